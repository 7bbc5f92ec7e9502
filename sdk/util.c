/* util.c: pure helpers (see berth/util.h). */
#include <config.h>

#include <berth/util.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
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

/* -------------------------------------------------------- word splitting */

void berth_argv_free(berth_argv *a)
{
    if (!a)
        return;
    if (a->v) {
        for (size_t i = 0; i < a->n; i++)
            free(a->v[i]);
        free(a->v);
    }
    a->v = NULL;
    a->n = 0;
}

static int argv_push(berth_argv *a, size_t *cap, berth_buf *word)
{
    if (a->n + 2 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        char **v = realloc(a->v, ncap * sizeof *v);
        if (!v)
            return -BERTH_E_NOMEM;
        a->v = v;
        *cap = ncap;
    }
    char *w = berth_buf_steal(word, NULL);
    if (!w)
        return -BERTH_E_NOMEM;
    a->v[a->n++] = w;
    a->v[a->n] = NULL;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

int berth_shell_split(const char *s, berth_argv *out, berth_error *err)
{
    berth_argv a = {0};
    size_t cap = 0;
    berth_buf word = {0};
    bool in_word = false;
    int rc = 0;

    out->v = NULL;
    out->n = 0;
    if (!s) {
        rc = berth_error_set(err, BERTH_E_INVALID, "no command to split");
        goto out;
    }
    for (size_t i = 0; s[i];) {
        char c = s[i];
        if (is_blank(c)) {
            if (in_word) {
                rc = argv_push(&a, &cap, &word);
                if (rc != 0) {
                    rc = -BERTH_E_NOMEM;
                    goto out;
                }
                in_word = false;
            }
            i++;
        } else if (c == '#' && !in_word) {
            while (s[i] && s[i] != '\n')
                i++;
        } else if (c == '\\') {
            if (s[i + 1] == '\0') {
                rc = berth_error_set(err, BERTH_E_INVALID,
                                     "the command ends with a lone backslash at character %zu; "
                                     "remove it or escape it as \\\\",
                                     i + 1);
                goto out;
            }
            if (s[i + 1] != '\n') {
                if (berth_buf_append(&word, s + i + 1, 1) != 0) {
                    rc = -BERTH_E_NOMEM;
                    goto out;
                }
                in_word = true;
            }
            /* A backslash-newline is a line continuation: it joins, and is not a word. */
            i += 2;
        } else if (c == '\'') {
            size_t start = i;
            const char *end = strchr(s + i + 1, '\'');
            if (!end) {
                rc = berth_error_set(err, BERTH_E_INVALID,
                                     "unclosed single quote at character %zu of the command; "
                                     "add the closing ' (inside '...' nothing is special)",
                                     start + 1);
                goto out;
            }
            size_t len = (size_t)(end - (s + i + 1));
            if (berth_buf_append(&word, s + i + 1, len) != 0) {
                rc = -BERTH_E_NOMEM;
                goto out;
            }
            in_word = true;
            i = (size_t)(end - s) + 1;
        } else if (c == '"') {
            size_t start = i;
            i++;
            if (berth_buf_append(&word, "", 0) != 0) {
                rc = -BERTH_E_NOMEM;
                goto out;
            }
            in_word = true;
            for (;;) {
                char d = s[i];
                if (d == '\0') {
                    rc = berth_error_set(err, BERTH_E_INVALID,
                                         "unclosed double quote at character %zu of the command; "
                                         "add the closing \" or escape the quote as \\\"",
                                         start + 1);
                    goto out;
                }
                if (d == '"') {
                    i++;
                    break;
                }
                if (d == '\\' && s[i + 1] != '\0' && strchr("\"\\$`\n", s[i + 1])) {
                    if (s[i + 1] != '\n' && berth_buf_append(&word, s + i + 1, 1) != 0) {
                        rc = -BERTH_E_NOMEM;
                        goto out;
                    }
                    i += 2;
                    continue;
                }
                if (berth_buf_append(&word, &d, 1) != 0) {
                    rc = -BERTH_E_NOMEM;
                    goto out;
                }
                i++;
            }
        } else {
            size_t j = i;
            while (s[j] && !is_blank(s[j]) && s[j] != '\\' && s[j] != '\'' && s[j] != '"')
                j++;
            if (berth_buf_append(&word, s + i, j - i) != 0) {
                rc = -BERTH_E_NOMEM;
                goto out;
            }
            in_word = true;
            i = j;
        }
    }
    if (in_word && argv_push(&a, &cap, &word) != 0) {
        rc = -BERTH_E_NOMEM;
        goto out;
    }
    if (!a.v) {
        a.v = calloc(1, sizeof *a.v);
        if (!a.v) {
            rc = -BERTH_E_NOMEM;
            goto out;
        }
    }
    *out = a;
    a.v = NULL;
    a.n = 0;
out:
    if (rc == -BERTH_E_NOMEM)
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory while splitting the command");
    berth_buf_free(&word);
    berth_argv_free(&a);
    return rc;
}

/* ------------------------------------------------------ image references */

#define IMAGE_REF_MAX 255
#define TAG_MAX       128

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
    return is_alnum(c) || c == '_';
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A copy of an untrusted value fit to quote in a message: control bytes
 * escaped, long values cut with "...". */
static void quote_value(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0, i = 0;
    for (; i < len && o + 8 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(buf + o, size - o, "\\x%02x", c);
            o += 4;
        } else {
            buf[o++] = (char)c;
        }
    }
    if (i < len && o + 3 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

/* One path component: alnum+ ([._]|__|-+ alnum+)*. Returns NULL or the rule broken. */
static const char *check_path_component(const char *s, size_t len)
{
    if (len == 0)
        return "it has an empty path component (a '/' at the start or end, or '//')";
    size_t i = 0;
    for (;;) {
        size_t st = i;
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == st) {
            for (size_t k = 0; k < len; k++)
                if (s[k] >= 'A' && s[k] <= 'Z')
                    return "the repository name must be lower-case";
            if (st == 0)
                return "each path component must start with a lower-case letter or digit";
            return "separators (., _, __ or dashes) must sit between letters or digits";
        }
        if (i == len)
            return NULL;
        if (s[i] == '.' || (s[i] == '_' && !(i + 1 < len && s[i + 1] == '_'))) {
            i++;
        } else if (s[i] == '_') {
            i += 2;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else if (s[i] >= 'A' && s[i] <= 'Z') {
            return "the repository name must be lower-case";
        } else {
            return "the repository name may only contain a-z, 0-9, '.', '_', '-' and '/'";
        }
        if (i == len)
            return "a path component must end with a letter or digit";
    }
}

/* host[:port], host a dotted name of [A-Za-z0-9-] labels, an IPv4 address or [IPv6]. */
static const char *check_domain(const char *s, size_t len)
{
    size_t i = 0;
    if (len > 0 && s[0] == '[') {
        i = 1;
        while (i < len && (is_hex(s[i]) || s[i] == ':' || s[i] == '.'))
            i++;
        if (i == 1 || i >= len || s[i] != ']')
            return "the registry address has a malformed [IPv6] host";
        i++;
    } else {
        for (;;) {
            size_t st = i;
            while (i < len && (is_alnum(s[i]) || s[i] == '-'))
                i++;
            if (i == st)
                return "the registry host has an empty or malformed label";
            if (s[st] == '-' || s[i - 1] == '-')
                return "a registry host label must not start or end with '-'";
            if (i < len && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i < len && s[i] == ':') {
        size_t st = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return "the registry port must be a number";
    }
    if (i != len)
        return "the registry address may only contain letters, digits, '.', '-' and a :port";
    return NULL;
}

/* Whether the first component (before the first '/') names a registry, as docker decides. */
static bool first_is_domain(const char *s, size_t len)
{
    if (len == 9 && memcmp(s, "localhost", 9) == 0)
        return true;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '.' || s[i] == ':' || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '[')
            return true;
    return false;
}

typedef struct ref_parts {
    const char *domain;
    size_t domain_len;
    const char *path;
    size_t path_len;
    const char *tag;
    size_t tag_len;
    const char *digest;
    size_t digest_len;
} ref_parts;

static const char *split_ref(const char *ref, ref_parts *p)
{
    size_t len = strlen(ref);
    memset(p, 0, sizeof *p);
    if (len == 0)
        return "it is empty";
    if (ref[0] == '-')
        return "it must not start with '-'";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ref[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            return "it must not contain whitespace";
        if (c < 0x20 || c >= 0x7f)
            return "it may only contain printable ASCII characters";
    }
    if (len > IMAGE_REF_MAX)
        return "it is longer than 255 characters";

    size_t name_end = len;
    const char *at = strchr(ref, '@');
    if (at) {
        name_end = (size_t)(at - ref);
        p->digest = at + 1;
        p->digest_len = len - name_end - 1;
        const char *colon = memchr(p->digest, ':', p->digest_len);
        if (!colon)
            return "the digest must look like sha256:<hex>";
        size_t alen = (size_t)(colon - p->digest);
        /* algorithm: [A-Za-z][A-Za-z0-9]* separated by [+._-] */
        if (alen == 0)
            return "the digest has no algorithm (sha256:<hex>)";
        bool need_alpha = true;
        for (size_t i = 0; i < alen; i++) {
            char c = p->digest[i];
            if (need_alpha) {
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                    return "the digest algorithm is malformed (expected e.g. sha256)";
                need_alpha = false;
            } else if (c == '+' || c == '.' || c == '-' || c == '_') {
                need_alpha = true;
            } else if (!is_alnum(c)) {
                return "the digest algorithm is malformed (expected e.g. sha256)";
            }
        }
        if (need_alpha)
            return "the digest algorithm is malformed (expected e.g. sha256)";
        size_t hlen = p->digest_len - alen - 1;
        if (hlen < 32)
            return "the digest must have at least 32 hex digits";
        for (size_t i = alen + 1; i < p->digest_len; i++)
            if (!is_hex(p->digest[i]))
                return "the digest may only contain hex digits after the algorithm";
    }
    if (name_end == 0)
        return "it has no repository name";

    /* A tag follows the last ':' after the last '/'. */
    size_t slash = name_end;
    for (size_t i = name_end; i-- > 0;)
        if (ref[i] == '/') {
            slash = i;
            break;
        }
    size_t search_from = slash == name_end ? 0 : slash + 1;
    size_t path_end = name_end;
    for (size_t i = name_end; i-- > search_from;)
        if (ref[i] == ':') {
            p->tag = ref + i + 1;
            p->tag_len = name_end - i - 1;
            path_end = i;
            break;
        }
    if (p->tag) {
        if (p->tag_len == 0)
            return "the tag after ':' is empty";
        if (p->tag_len > TAG_MAX)
            return "the tag is longer than 128 characters";
        if (!is_word(p->tag[0]))
            return "the tag must start with a letter, digit or '_'";
        for (size_t i = 1; i < p->tag_len; i++)
            if (!is_word(p->tag[i]) && p->tag[i] != '.' && p->tag[i] != '-')
                return "the tag may only contain letters, digits, '_', '.' and '-'";
    }
    if (path_end == 0)
        return "it has no repository name";

    const char *first_slash = memchr(ref, '/', path_end);
    const char *path = ref;
    size_t path_len = path_end;
    if (first_slash && first_is_domain(ref, (size_t)(first_slash - ref))) {
        p->domain = ref;
        p->domain_len = (size_t)(first_slash - ref);
        const char *why = check_domain(p->domain, p->domain_len);
        if (why)
            return why;
        path = first_slash + 1;
        path_len = path_end - p->domain_len - 1;
    }
    p->path = path;
    p->path_len = path_len;
    if (path_len == 0)
        return "it has no repository name after the registry";
    /* "docker.io/evil.example/x" names a Docker Hub repository, but written without
     * "docker.io/" (as a parsed reference is) it would name the registry evil.example.
     * Hub namespaces have no '.', so such a name can only be a mistake or a trick. */
    if (p->domain && ((p->domain_len == 9 && memcmp(p->domain, "docker.io", 9) == 0) ||
                      (p->domain_len == 15 && memcmp(p->domain, "index.docker.io", 15) == 0))) {
        const char *slash2 = memchr(path, '/', path_len);
        if (slash2 && first_is_domain(path, (size_t)(slash2 - path)))
            return "a Docker Hub namespace cannot contain '.' or be localhost (after "
                   "docker.io/ it would read as another registry)";
    }
    size_t st = 0;
    for (size_t i = 0; i <= path_len; i++) {
        if (i == path_len || path[i] == '/') {
            const char *why = check_path_component(path + st, i - st);
            if (why)
                return why;
            st = i + 1;
        }
    }
    return NULL;
}

int berth_image_ref_check(const char *ref, berth_error *err)
{
    ref_parts p;
    if (!ref)
        return berth_error_set(err, BERTH_E_INVALID, "no image reference given");
    const char *why = split_ref(ref, &p);
    if (why) {
        char q[300];
        quote_value(ref, strlen(ref), q, sizeof q);
        return berth_error_set(err, BERTH_E_INVALID,
                               "image '%s' is not a valid image reference: %s "
                               "(expected [registry[:port]/]name[:tag][@sha256:digest], "
                               "e.g. python:3.12-slim)",
                               q, why);
    }
    return 0;
}

void berth_image_ref_free(berth_image_ref *r)
{
    if (!r)
        return;
    free(r->registry);
    free(r->repository);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof *r);
}

int berth_image_ref_parse(const char *ref, berth_image_ref *out, berth_error *err)
{
    ref_parts p;
    memset(out, 0, sizeof *out);
    int rc = berth_image_ref_check(ref, err);
    if (rc != 0)
        return rc;
    split_ref(ref, &p);
    bool hub = !p.domain || (p.domain_len == 9 && memcmp(p.domain, "docker.io", 9) == 0) ||
               (p.domain_len == 15 && memcmp(p.domain, "index.docker.io", 15) == 0);
    if (!hub) {
        out->registry = strndup(p.domain, p.domain_len);
        if (!out->registry)
            goto nomem;
    }
    if (hub && !memchr(p.path, '/', p.path_len)) {
        berth_buf b = {0};
        if (berth_buf_append(&b, "library/", 8) != 0 ||
            berth_buf_append(&b, p.path, p.path_len) != 0) {
            berth_buf_free(&b);
            goto nomem;
        }
        out->repository = berth_buf_steal(&b, NULL);
    } else {
        out->repository = strndup(p.path, p.path_len);
    }
    if (!out->repository)
        goto nomem;
    if (p.tag)
        out->tag = strndup(p.tag, p.tag_len);
    else if (!p.digest)
        out->tag = strdup("latest");
    if ((p.tag || !p.digest) && !out->tag)
        goto nomem;
    if (p.digest) {
        out->digest = strndup(p.digest, p.digest_len);
        if (!out->digest)
            goto nomem;
    }
    return 0;
nomem:
    berth_image_ref_free(out);
    return berth_error_set(err, BERTH_E_NOMEM, "out of memory parsing an image reference");
}

int berth_container_ref_check(const char *ref, berth_error *err)
{
    const char *why = NULL;
    size_t len = ref ? strlen(ref) : 0;
    if (len == 0)
        why = "it is empty";
    else if (len > 128)
        why = "it is longer than 128 characters";
    else if (!is_alnum(ref[0]))
        why = "it must start with a letter or digit";
    else
        for (size_t i = 1; i < len && !why; i++)
            if (!is_alnum(ref[i]) && ref[i] != '_' && ref[i] != '.' && ref[i] != '-')
                why = "it may only contain letters, digits, '_', '.' and '-'";
    if (!why)
        return 0;
    char q[300];
    quote_value(ref ? ref : "", len, q, sizeof q);
    return berth_error_set(err, BERTH_E_INVALID,
                           "container '%s' is not a valid container id or name: %s", q, why);
}

/* --------------------------------------------------------------- parsing */

#define KIB ((int64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

int berth_parse_size(const char *s, int64_t *out, berth_error *err)
{
    const char *why = NULL;
    size_t i = 0;
    unsigned __int128 whole = 0, frac = 0, scale = 1;
    int64_t mult = 1;
    if (!s || !*s) {
        why = "it is empty";
        goto bad;
    }
    if (s[0] == '-') {
        why = "it must not be negative";
        goto bad;
    }
    if (!(s[0] >= '0' && s[0] <= '9')) {
        why = "it must start with a number";
        goto bad;
    }
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        whole = whole * 10 + (unsigned)(s[i] - '0');
        if (whole > INT64_MAX) {
            why = "it is too large";
            goto bad;
        }
    }
    if (s[i] == '.') {
        i++;
        if (!(s[i] >= '0' && s[i] <= '9')) {
            why = "a digit must follow the decimal point";
            goto bad;
        }
        for (; s[i] >= '0' && s[i] <= '9'; i++) {
            /* Digits past 1e-18 cannot change a whole byte count of a g-multiple. */
            if (scale < (unsigned __int128)1000000000000000000ULL) {
                frac = frac * 10 + (unsigned)(s[i] - '0');
                scale *= 10;
            }
        }
    }
    if (s[i] == ' ')
        i++;
    switch (s[i]) {
    case 'b':
    case 'B':
        mult = 1;
        i++;
        break;
    case 'k':
    case 'K':
        mult = KIB;
        i++;
        break;
    case 'm':
    case 'M':
        mult = MIB;
        i++;
        break;
    case 'g':
    case 'G':
        mult = GIB;
        i++;
        break;
    case '\0':
        break;
    default:
        why = "the unit must be b, k, m or g";
        goto bad;
    }
    if (mult != 1) {
        if (s[i] == 'i' || s[i] == 'I')
            i++;
        if (s[i] == 'b' || s[i] == 'B')
            i++;
    }
    if (s[i] != '\0') {
        why = "it has unexpected characters after the number and unit";
        goto bad;
    }
    {
        unsigned __int128 total = whole * (unsigned __int128)mult;
        total += frac * (unsigned __int128)mult / scale;
        if (total > INT64_MAX) {
            why = "it is too large";
            goto bad;
        }
        *out = (int64_t)total;
    }
    return 0;
bad:;
    char q[120];
    quote_value(s ? s : "", s ? strlen(s) : 0, q, sizeof q);
    return berth_error_set(err, BERTH_E_INVALID,
                           "size '%s' is not valid: %s (use a number with an optional unit "
                           "b, k, m or g, e.g. 512m or 2g)",
                           q, why);
}

void berth_format_size(int64_t bytes, char *buf, size_t bufsize)
{
    if (!buf || bufsize == 0)
        return;
    if (bytes > 0 && bytes % GIB == 0)
        snprintf(buf, bufsize, "%" PRId64 "g", bytes / GIB);
    else if (bytes > 0 && bytes % MIB == 0)
        snprintf(buf, bufsize, "%" PRId64 "m", bytes / MIB);
    else if (bytes > 0 && bytes % KIB == 0)
        snprintf(buf, bufsize, "%" PRId64 "k", bytes / KIB);
    else
        snprintf(buf, bufsize, "%" PRId64 "b", bytes);
}

int berth_cpus_to_nano(double cpus, int64_t *out, berth_error *err)
{
    if (isnan(cpus) || cpus <= 0)
        return berth_error_set(err, BERTH_E_INVALID,
                               "cpus %g is not valid: it must be a number above 0, e.g. 1.5", cpus);
    if (cpus > 1024)
        return berth_error_set(err, BERTH_E_INVALID,
                               "cpus %g is not valid: it must be at most 1024", cpus);
    int64_t nano = llround(cpus * 1e9);
    if (nano <= 0)
        return berth_error_set(err, BERTH_E_INVALID,
                               "cpus %g is too small: it must be at least 0.000000001", cpus);
    *out = nano;
    return 0;
}

/* ------------------------------------------------------------------ text */

/* Length of the valid UTF-8 sequence at s (at most len bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool berth_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

char *berth_utf8_sanitize(const char *s, size_t len, size_t *replaced)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t count = 0;
    if (replaced)
        *replaced = 0;
    /* Each replaced byte grows to 3 bytes at most. */
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *o = malloc(len * 3 + 1);
    if (!o)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        size_t n = u[i] == 0 ? 0 : utf8_seq(u + i, len - i);
        if (n == 0) {
            memcpy(o + w, "\xef\xbf\xbd", 3);
            w += 3;
            count++;
            i++;
        } else {
            memcpy(o + w, u + i, n);
            w += n;
            i += n;
        }
    }
    o[w] = '\0';
    char *shrunk = realloc(o, w + 1);
    if (shrunk)
        o = shrunk;
    if (replaced)
        *replaced = count;
    return o;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *berth_base64_encode(const void *data, size_t len)
{
    const unsigned char *d = data;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t olen = (len + 2) / 3 * 4;
    char *o = malloc(olen + 1);
    if (!o)
        return NULL;
    size_t w = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        o[w++] = b64[v >> 18];
        o[w++] = b64[(v >> 12) & 63];
        o[w++] = b64[(v >> 6) & 63];
        o[w++] = b64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        o[w++] = b64[v >> 18];
        o[w++] = b64[(v >> 12) & 63];
        o[w++] = '=';
        o[w++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        o[w++] = b64[v >> 18];
        o[w++] = b64[(v >> 12) & 63];
        o[w++] = b64[(v >> 6) & 63];
        o[w++] = '=';
    }
    o[w] = '\0';
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int berth_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len % 4 != 0)
        return -BERTH_E_INVALID;
    unsigned char *o = malloc(len / 4 * 3 + 1);
    if (!o)
        return -BERTH_E_NOMEM;
    size_t w = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        bool last = i + 4 == len;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = s[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = pad ? -1 : b64_value(c);
            if (v[k] < 0)
                goto bad;
        }
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* "==" must fill the last two places, and the unused bits must be zero. */
        if (pad == 1 && (x & 0xff) != 0)
            goto bad;
        if (pad == 2 && (s[i + 2] != '=' || (x & 0xffff) != 0))
            goto bad;
        o[w++] = (unsigned char)(x >> 16);
        if (pad < 2)
            o[w++] = (unsigned char)(x >> 8);
        if (pad < 1)
            o[w++] = (unsigned char)x;
    }
    o[w] = '\0';
    *out = o;
    *out_len = w;
    return 0;
bad:
    free(o);
    return -BERTH_E_INVALID;
}
