#include "CCurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* Set once by `load`, under pthread_once, and only read after it: every entry point below is
   reached through a handle, and a handle is only made after regkeeper_curl_load succeeded. */
static CURL *(*easy_init)(void);
static void (*easy_cleanup)(CURL *);
static void (*easy_reset)(CURL *);
static CURLcode (*easy_perform)(CURL *);
static CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
static CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
static const char *(*easy_strerror)(CURLcode);
static struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
static void (*slist_free_all)(struct curl_slist *);
static CURLcode (*global_init)(long);

static pthread_once_t loading = PTHREAD_ONCE_INIT;
static char failure[512];

static int resolve(void *library, void **pointer, const char *name) {
    *pointer = dlsym(library, name);
    if (*pointer == NULL) snprintf(failure, sizeof failure, "libcurl.so.4 has no %s", name);
    return *pointer != NULL;
}

static void load(void) {
    /* Never closed: handles live until the process ends. */
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(failure, sizeof failure, "%s", reason != NULL ? reason : "libcurl.so.4 could not be loaded");
        return;
    }
    if (!(resolve(library, (void **)&easy_init, "curl_easy_init")
          && resolve(library, (void **)&easy_cleanup, "curl_easy_cleanup")
          && resolve(library, (void **)&easy_reset, "curl_easy_reset")
          && resolve(library, (void **)&easy_perform, "curl_easy_perform")
          && resolve(library, (void **)&easy_setopt, "curl_easy_setopt")
          && resolve(library, (void **)&easy_getinfo, "curl_easy_getinfo")
          && resolve(library, (void **)&easy_strerror, "curl_easy_strerror")
          && resolve(library, (void **)&slist_append, "curl_slist_append")
          && resolve(library, (void **)&slist_free_all, "curl_slist_free_all")
          && resolve(library, (void **)&global_init, "curl_global_init"))) {
        return;
    }
    CURLcode code = global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK) snprintf(failure, sizeof failure, "curl_global_init: %s", easy_strerror(code));
}

const char *regkeeper_curl_load(void) {
    pthread_once(&loading, load);
    return failure[0] != '\0' ? failure : NULL;
}

CURL *regkeeper_curl_easy_init(void) { return easy_init(); }
void regkeeper_curl_easy_cleanup(CURL *handle) { easy_cleanup(handle); }
void regkeeper_curl_easy_reset(CURL *handle) { easy_reset(handle); }
CURLcode regkeeper_curl_easy_perform(CURL *handle) { return easy_perform(handle); }
const char *regkeeper_curl_easy_strerror(CURLcode code) { return easy_strerror(code); }
struct curl_slist *regkeeper_curl_slist_append(struct curl_slist *list, const char *text) { return slist_append(list, text); }
void regkeeper_curl_slist_free_all(struct curl_slist *list) { slist_free_all(list); }

CURLcode regkeeper_curl_set_long(CURL *handle, CURLoption option, long value) { return easy_setopt(handle, option, value); }
CURLcode regkeeper_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) { return easy_setopt(handle, option, value); }
CURLcode regkeeper_curl_set_string(CURL *handle, CURLoption option, const char *value) { return easy_setopt(handle, option, value); }
CURLcode regkeeper_curl_set_pointer(CURL *handle, CURLoption option, void *value) { return easy_setopt(handle, option, value); }
CURLcode regkeeper_curl_set_headers(CURL *handle, struct curl_slist *headers) { return easy_setopt(handle, CURLOPT_HTTPHEADER, headers); }
CURLcode regkeeper_curl_set_callback(CURL *handle, CURLoption option, regkeeper_curl_data_callback callback) {
    return easy_setopt(handle, option, callback);
}
CURLcode regkeeper_curl_response_code(CURL *handle, long *code) { return easy_getinfo(handle, CURLINFO_RESPONSE_CODE, code); }
