#ifndef REGKEEPER_CCURL_H
#define REGKEEPER_CCURL_H
#include <curl/curl.h>

/* libcurl, loaded on first use with dlopen rather than linked: linked, it and the thirty
   libraries it needs (TLS, Kerberos, LDAP, SSH, ...) were mapped and relocated at the start
   of every command, 4 ms each time, while only commands on an s3:// root use it. Only the
   functions below reach it; libcurl's own are declared by <curl/curl.h> (for its types and
   constants) but are not linked, so calling one directly fails the build. */

/* Loads libcurl.so.4 and runs curl_global_init, once per process (later calls return the
   first answer). NULL when libcurl is ready, otherwise why it is not. */
const char *regkeeper_curl_load(void);

CURL *regkeeper_curl_easy_init(void);
void regkeeper_curl_easy_cleanup(CURL *handle);
void regkeeper_curl_easy_reset(CURL *handle);
CURLcode regkeeper_curl_easy_perform(CURL *handle);
const char *regkeeper_curl_easy_strerror(CURLcode code);
struct curl_slist *regkeeper_curl_slist_append(struct curl_slist *list, const char *text);
void regkeeper_curl_slist_free_all(struct curl_slist *list);

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
   entry point per argument kind. */

typedef size_t (*regkeeper_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);

CURLcode regkeeper_curl_set_long(CURL *handle, CURLoption option, long value);
CURLcode regkeeper_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value);
/* libcurl copies string options (since 7.17), so the Swift string may go away after the call. */
CURLcode regkeeper_curl_set_string(CURL *handle, CURLoption option, const char *value);
CURLcode regkeeper_curl_set_pointer(CURL *handle, CURLoption option, void *value);
CURLcode regkeeper_curl_set_headers(CURL *handle, struct curl_slist *headers);
CURLcode regkeeper_curl_set_callback(CURL *handle, CURLoption option, regkeeper_curl_data_callback callback);
CURLcode regkeeper_curl_response_code(CURL *handle, long *code);

#endif
