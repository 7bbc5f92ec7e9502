/* Fuzzes the text helpers: UTF-8 check and sanitising, and base64 both ways. */
#include <config.h>

#include "fuzz.h"

#include <string.h>

#include <berth/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t replaced = 0;
    char *clean = berth_utf8_sanitize(s, size, &replaced);
    FUZZ_ASSERT(clean != NULL);
    size_t clen = strlen(clean);
    FUZZ_ASSERT(berth_utf8_valid(clean, clen));
    bool valid = berth_utf8_valid(s, size);
    if (valid && !memchr(s, '\0', size)) {
        FUZZ_ASSERT(replaced == 0);
        FUZZ_ASSERT(clen == size && memcmp(clean, s, size) == 0);
    } else {
        FUZZ_ASSERT(replaced > 0);
    }
    /* Sanitising is idempotent. */
    size_t again = 1;
    char *twice = berth_utf8_sanitize(clean, clen, &again);
    FUZZ_ASSERT(twice && again == 0 && strcmp(twice, clean) == 0);
    free(twice);
    free(clean);

    char *enc = berth_base64_encode(data, size);
    FUZZ_ASSERT(enc != NULL);
    unsigned char *dec = NULL;
    size_t dlen = 0;
    FUZZ_ASSERT(berth_base64_decode(enc, strlen(enc), &dec, &dlen) == 0);
    FUZZ_ASSERT(dlen == size && (size == 0 || memcmp(dec, data, size) == 0));
    free(dec);
    free(enc);

    /* Decoding arbitrary text: canonical input re-encodes to itself. */
    if (berth_base64_decode(s, size, &dec, &dlen) == 0) {
        char *re = berth_base64_encode(dec, dlen);
        FUZZ_ASSERT(re && strlen(re) == size && memcmp(re, s, size) == 0);
        free(re);
        free(dec);
    } else {
        FUZZ_ASSERT(dec == NULL);
    }
    return 0;
}
