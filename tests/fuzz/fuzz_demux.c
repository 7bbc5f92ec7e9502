/*
 * Fuzzes the Engine's 8-byte framed stream demuxer and the capped sink
 * (sdk/output.c). Input: byte 0 picks the cap, byte 1 seeds the chunk sizes,
 * the rest is the stream. Invariants: any chunking gives the same result as
 * one feed; kept bytes never exceed the cap and are a prefix of what an
 * uncapped sink keeps; totals count every payload byte either way.
 */
#include <config.h>

#include "fuzz.h"

#include <string.h>

#include "docker_impl.h"

typedef struct outcome {
    int rc;
    bool boundary;
    berth_output_sink sink;
    uint64_t forwarded;
} outcome;

static void on_output(void *ud, berth_stream stream, const char *data, size_t len)
{
    outcome *o = ud;
    FUZZ_ASSERT(stream == BERTH_STDOUT || stream == BERTH_STDERR);
    FUZZ_ASSERT(len > 0 && data != NULL);
    o->forwarded += len;
}

/* Feed `data` in chunks drawn from `seed` (0: all at once). */
static void feed(const uint8_t *data, size_t size, unsigned seed, berth_run_spec *spec, outcome *o)
{
    berth_demux m;
    berth_demux_init(&m);
    spec->ud = o;
    berth_output_sink_init(&o->sink, spec);
    o->rc = 0;
    unsigned x = seed * 2654435761u + 1;
    for (size_t off = 0; off < size && o->rc == 0;) {
        size_t n = size - off;
        if (seed) {
            x = x * 1103515245u + 12345u;
            size_t c = 1 + (x >> 16) % 19;
            if (c < n)
                n = c;
        }
        o->rc = berth_demux_feed(&m, (const char *)data + off, n, &o->sink);
        off += n;
    }
    o->boundary = berth_demux_at_boundary(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cap = data[0] % 4 == 0 ? 0 : data[0] % 64;
    unsigned seed = data[1];
    data += 2;
    size -= 2;

    berth_run_spec capped = {.output_cap = cap, .on_output = on_output};
    berth_run_spec whole = {.on_output = on_output};
    outcome a = {0}, b = {0}, c = {0};
    feed(data, size, 0, &capped, &a);
    feed(data, size, seed ? seed : 1, &capped, &b);
    feed(data, size, seed, &whole, &c);

    FUZZ_ASSERT(a.rc == 0 || a.rc == -BERTH_E_PROTOCOL);
    FUZZ_ASSERT(a.rc == b.rc);
    if (a.rc == 0)
        FUZZ_ASSERT(a.boundary == b.boundary && a.boundary == c.boundary);
    /* A bad header stops every chunking at the same byte. */
    FUZZ_ASSERT(c.rc == a.rc);
    FUZZ_ASSERT(a.sink.out_total == b.sink.out_total && a.sink.out_total == c.sink.out_total);
    FUZZ_ASSERT(a.sink.err_total == b.sink.err_total && a.sink.err_total == c.sink.err_total);
    FUZZ_ASSERT(a.sink.out_total + a.sink.err_total <= size);
    FUZZ_ASSERT(a.sink.out.len == b.sink.out.len && a.sink.err.len == b.sink.err.len);
    FUZZ_ASSERT(a.sink.truncated == b.sink.truncated);
    FUZZ_ASSERT(a.forwarded == b.forwarded);
    FUZZ_ASSERT(a.forwarded == a.sink.out.len + a.sink.err.len);
    if (a.sink.out.len)
        FUZZ_ASSERT(memcmp(a.sink.out.data, b.sink.out.data, a.sink.out.len) == 0);
    if (a.sink.err.len)
        FUZZ_ASSERT(memcmp(a.sink.err.data, b.sink.err.data, a.sink.err.len) == 0);
    if (cap) {
        FUZZ_ASSERT(a.sink.out.len <= cap && a.sink.err.len <= cap);
        FUZZ_ASSERT(a.sink.truncated == (a.sink.out_total > cap || a.sink.err_total > cap));
    } else {
        FUZZ_ASSERT(!a.sink.truncated);
        FUZZ_ASSERT(a.sink.out.len == a.sink.out_total && a.sink.err.len == a.sink.err_total);
    }
    {
        /* The capped copy is the start of the uncapped one. */
        FUZZ_ASSERT(a.sink.out.len <= c.sink.out.len && a.sink.err.len <= c.sink.err.len);
        if (a.sink.out.len)
            FUZZ_ASSERT(memcmp(a.sink.out.data, c.sink.out.data, a.sink.out.len) == 0);
        if (a.sink.err.len)
            FUZZ_ASSERT(memcmp(a.sink.err.data, c.sink.err.data, a.sink.err.len) == 0);
        FUZZ_ASSERT(c.sink.out.len == c.sink.out_total && c.sink.err.len == c.sink.err_total);
    }

    berth_run_result r = {0};
    berth_output_sink_finish(&a.sink, &r);
    FUZZ_ASSERT(r.out && r.err && r.out[r.out_len] == '\0' && r.err[r.err_len] == '\0');
    free(r.out);
    free(r.err);
    berth_output_sink_free(&a.sink);
    berth_output_sink_free(&b.sink);
    berth_output_sink_free(&c.sink);
    return 0;
}
