/* Fuzzes berth_shell_split: any bytes give words or a positioned error, never a crash. */
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
    berth_argv a = {0};
    berth_error err = {0};
    int rc = berth_shell_split(s, &a, &err);
    if (rc == 0) {
        FUZZ_ASSERT(a.v != NULL);
        FUZZ_ASSERT(a.v[a.n] == NULL);
        size_t total = 0;
        for (size_t i = 0; i < a.n; i++) {
            FUZZ_ASSERT(a.v[i] != NULL);
            total += strlen(a.v[i]);
        }
        /* Splitting only removes characters. */
        FUZZ_ASSERT(total <= strlen(s));
    } else {
        FUZZ_ASSERT(rc == -BERTH_E_INVALID);
        FUZZ_ASSERT(a.v == NULL && a.n == 0);
        FUZZ_ASSERT(strstr(err.message, "character") != NULL);
    }
    berth_argv_free(&a);
    free(s);
    return 0;
}
