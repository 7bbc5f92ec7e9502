/*
 * Shared by berth's fuzz harnesses: each defines LLVMFuzzerTestOneInput and
 * is linked either with libFuzzer (run-libfuzzer.sh) or with standalone.c,
 * which replays the committed corpus in `make check`.
 */
#ifndef BERTH_FUZZ_H
#define BERTH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant broke: say which, and crash so both engines report the input. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif /* BERTH_FUZZ_H */
