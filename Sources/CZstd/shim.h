#ifndef REGKEEPER_CZSTD_SHIM_H
#define REGKEEPER_CZSTD_SHIM_H
#include <zstd.h>
#endif
