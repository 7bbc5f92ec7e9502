/* Fuzzes image and container reference checks and the image reference parser. */
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
    berth_error err = {0};
    int ok = berth_image_ref_check(s, &err) == 0;
    if (!ok) {
        FUZZ_ASSERT(err.code == BERTH_E_INVALID);
        FUZZ_ASSERT(strncmp(err.message, "image '", 7) == 0);
    }
    berth_image_ref r;
    int prc = berth_image_ref_parse(s, &r, &err);
    FUZZ_ASSERT((prc == 0) == ok);
    if (ok) {
        /* What the checker accepts never looks like an option or holds a blank. */
        FUZZ_ASSERT(s[0] != '-');
        FUZZ_ASSERT(strlen(s) <= 255);
        FUZZ_ASSERT(!strpbrk(s, " \t\n\r"));
        FUZZ_ASSERT(r.repository && *r.repository);
        FUZZ_ASSERT(r.tag || r.digest);
        FUZZ_ASSERT(!r.registry || strcmp(r.registry, "docker.io") != 0);
        for (const char *c = r.repository; *c; c++)
            FUZZ_ASSERT(!(*c >= 'A' && *c <= 'Z'));
        /* The parts put back together are a valid reference again. */
        berth_buf b = {0};
        if (r.registry)
            berth_buf_printf(&b, "%s/", r.registry);
        berth_buf_printf(&b, "%s", r.repository);
        if (r.tag)
            berth_buf_printf(&b, ":%s", r.tag);
        if (r.digest)
            berth_buf_printf(&b, "@%s", r.digest);
        if (b.data && b.len <= 255)
            FUZZ_ASSERT(berth_image_ref_check(b.data, NULL) == 0);
        berth_buf_free(&b);
        berth_image_ref_free(&r);
    } else {
        FUZZ_ASSERT(r.repository == NULL && r.registry == NULL);
    }
    int cok = berth_container_ref_check(s, NULL) == 0;
    if (cok)
        FUZZ_ASSERT(s[0] != '-' && strlen(s) <= 128 && !strpbrk(s, " /\t\n"));
    free(s);
    return 0;
}
