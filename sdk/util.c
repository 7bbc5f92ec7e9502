/* util.c: pure helpers (see berth/util.h). */
#include <config.h>

#include <berth/util.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ------------------------------------------------------------ buffers */

static int buf_reserve(berth_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -BERTH_E_NOMEM;
    size_t need = b->len + extra + 1;
    if (b->data && need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -BERTH_E_NOMEM;
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int berth_buf_append(berth_buf *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc != 0)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int berth_buf_printf(berth_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -BERTH_E_INVALID;
    int rc = buf_reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *berth_buf_steal(berth_buf *b, size_t *len)
{
    char *p = b->data;
    if (!p) {
        /* Callers expect a string they can free, even for an empty buffer. */
        p = calloc(1, 1);
    }
    if (len)
        *len = p ? b->len : 0;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void berth_buf_free(berth_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* ------------------------------------------------------------------ misc */

double berth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int berth_random_hex(char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[32];
    if (!buf || n > 64)
        return -BERTH_E_INVALID;
    size_t need = (n + 1) / 2;
    size_t got = 0;
    while (got < need) {
        ssize_t r = getrandom(raw + got, need - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -BERTH_E_IO;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
    buf[n] = '\0';
    return 0;
}
