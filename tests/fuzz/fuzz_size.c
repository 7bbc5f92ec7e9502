/* Fuzzes berth_parse_size and berth_format_size: what is formatted parses back. */
#include <config.h>

#include "fuzz.h"

#include <string.h>

#include <berth/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t v = -1;
    berth_error err = {0};
    if (berth_parse_size(s, &v, &err) == 0) {
        FUZZ_ASSERT(v >= 0);
        char buf[32];
        berth_format_size(v, buf, sizeof buf);
        int64_t back = -1;
        FUZZ_ASSERT(berth_parse_size(buf, &back, NULL) == 0);
        FUZZ_ASSERT(back == v);
    } else {
        FUZZ_ASSERT(v == -1);
        FUZZ_ASSERT(strncmp(err.message, "size '", 6) == 0);
    }
    /* Any 8 bytes as a count of bytes round-trip too. */
    if (size >= 8) {
        int64_t n;
        memcpy(&n, data, 8);
        if (n < 0)
            n = -(n + 1);
        char buf[32];
        berth_format_size(n, buf, sizeof buf);
        int64_t back = -1;
        FUZZ_ASSERT(berth_parse_size(buf, &back, NULL) == 0);
        FUZZ_ASSERT(back == n);
    }
    free(s);
    return 0;
}
