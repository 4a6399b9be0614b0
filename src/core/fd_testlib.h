/* SPDX-License-Identifier: MIT */
/* fd_testlib.h - tests only: counting this process's open file descriptors. */
#ifndef SB_CORE_FD_TESTLIB_H
#define SB_CORE_FD_TESTLIB_H

#include <dirent.h>

/* Entries of /proc/self/fd, the directory's own descriptor included. */
static inline int sbt_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

#endif
