#ifndef REGKEEPER_CCURL_SHIM_H
#define REGKEEPER_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
   entry point per argument kind. */

typedef size_t (*regkeeper_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);

static inline CURLcode regkeeper_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode regkeeper_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/* libcurl copies string options (since 7.17), so the Swift string may go away after the call. */
static inline CURLcode regkeeper_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode regkeeper_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode regkeeper_curl_set_headers(CURL *handle, struct curl_slist *headers) {
    return curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
}

static inline CURLcode regkeeper_curl_set_callback(CURL *handle, CURLoption option, regkeeper_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode regkeeper_curl_response_code(CURL *handle, long *code) {
    return curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, code);
}

#endif
