#define _GNU_SOURCE
#include "CSystemShims.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_by_components(int dirfd, const char *path, int flags, unsigned int mode) {
    char *copy = strdup(path);
    if (copy == NULL) { errno = ENOMEM; return -1; }
    int current = dup(dirfd);
    char *save = NULL;
    char *component = strtok_r(copy, "/", &save);
    while (component != NULL && current >= 0) {
        char *next = strtok_r(NULL, "/", &save);
        if (strcmp(component, "..") == 0) { close(current); current = -1; errno = EXDEV; break; }
        int opened = next == NULL
            ? openat(current, component, flags | O_NOFOLLOW | O_CLOEXEC, mode)
            : openat(current, component, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(current);
        errno = saved;
        current = opened;
        component = next;
    }
    free(copy);
    return current;
}

int regkeeper_open_beneath(int dirfd, const char *path, int flags, unsigned int mode) {
    static int openat2_missing = 0;
    if (!openat2_missing) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = (unsigned long long)(flags | O_CLOEXEC);
        how.mode = (flags & O_CREAT) ? mode : 0;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        long fd;
        do {
            fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
        if (fd >= 0 || errno != ENOSYS) return (int)fd;
        openat2_missing = 1;
    }
    return open_by_components(dirfd, path, flags, mode);
}

int regkeeper_stat_beneath(int dirfd, const char *path, struct stat *info) {
    int fd = regkeeper_open_beneath(dirfd, path, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0) return -1;
    int result = fstat(fd, info);
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}

int regkeeper_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
}

int regkeeper_syncfs(int fd) {
    return syncfs(fd);
}

int regkeeper_start_writeback(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

void *regkeeper_memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen) {
    return memmem(haystack, haystacklen, needle, needlelen);
}

void *regkeeper_memrchr(const void *s, int c, size_t n) {
    return memrchr(s, c, n);
}
