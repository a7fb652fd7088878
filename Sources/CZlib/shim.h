#ifndef REGKEEPER_CZLIB_SHIM_H
#define REGKEEPER_CZLIB_SHIM_H
#include <zlib.h>

/// inflateInit2 is a macro (it passes the library's version and z_stream size), which Swift
/// cannot call.
static inline int czlib_inflate_init_gzip(z_stream *stream) {
    // 16 + MAX_WBITS: a gzip wrapper, which is what logrotate's `compress` writes.
    return inflateInit2(stream, 16 + MAX_WBITS);
}
#endif
