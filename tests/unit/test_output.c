/*
 * The capped output sink and the 8-byte stream demuxer (sdk/output.c).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "docker_impl.h"
#include "testlib.h"

/* What on_output saw, per stream. */
typedef struct seen {
    berth_buf out, err;
    size_t calls;
} seen;

static void on_output(void *ud, berth_stream stream, const char *data, size_t len)
{
    seen *s = ud;
    s->calls++;
    berth_buf_append(stream == BERTH_STDERR ? &s->err : &s->out, data, len);
}

static void seen_free(seen *s)
{
    berth_buf_free(&s->out);
    berth_buf_free(&s->err);
}

/* Append one frame {stream,0,0,0,len BE32} + payload. */
static void frame(berth_buf *b, int stream, const char *payload, size_t len)
{
    unsigned char h[8] = {(unsigned char)stream,
                          0,
                          0,
                          0,
                          (unsigned char)(len >> 24),
                          (unsigned char)(len >> 16),
                          (unsigned char)(len >> 8),
                          (unsigned char)len};
    berth_buf_append(b, h, 8);
    berth_buf_append(b, payload, len);
}

static void test_sink_unlimited(void)
{
    seen s = {0};
    berth_run_spec spec = {.on_output = on_output, .ud = &s};
    berth_output_sink sink;
    berth_output_sink_init(&sink, &spec);
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDOUT, "hello ", 6), 0);
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDERR, "oops", 4), 0);
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDOUT, "world", 5), 0);
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDOUT, "", 0), 0);

    berth_run_result r = {0};
    berth_output_sink_finish(&sink, &r);
    CU_ASSERT_EQUAL(r.out_len, 11);
    CU_ASSERT_STRING_EQUAL(r.out, "hello world");
    CU_ASSERT_EQUAL(r.err_len, 4);
    CU_ASSERT_STRING_EQUAL(r.err, "oops");
    CU_ASSERT_EQUAL(r.out_total, 11);
    CU_ASSERT_EQUAL(r.err_total, 4);
    CU_ASSERT_FALSE(r.truncated);
    CU_ASSERT_EQUAL(s.calls, 3);
    CU_ASSERT_STRING_EQUAL(s.out.data, "hello world");
    CU_ASSERT_STRING_EQUAL(s.err.data, "oops");
    berth_output_sink_free(&sink);
    free(r.out);
    free(r.err);
    seen_free(&s);
}

static void test_sink_empty_is_empty_string(void)
{
    berth_run_spec spec = {0};
    berth_output_sink sink;
    berth_output_sink_init(&sink, &spec);
    berth_run_result r = {0};
    berth_output_sink_finish(&sink, &r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.err);
    CU_ASSERT_STRING_EQUAL(r.out, "");
    CU_ASSERT_EQUAL(r.out_len, 0);
    CU_ASSERT_EQUAL(r.err_len, 0);
    CU_ASSERT_FALSE(r.truncated);
    berth_output_sink_free(&sink);
    free(r.out);
    free(r.err);
}

static void test_sink_cap(void)
{
    seen s = {0};
    berth_run_spec spec = {.on_output = on_output, .ud = &s, .output_cap = 10};
    berth_output_sink sink;
    berth_output_sink_init(&sink, &spec);
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDOUT, "0123456", 7), 0);
    CU_ASSERT_FALSE(sink.truncated);
    /* straddles the cap: 3 kept, 4 dropped */
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDOUT, "789abcd", 7), 0);
    CU_ASSERT_TRUE(sink.truncated);
    /* wholly past the cap */
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDOUT, "efgh", 4), 0);
    /* the other stream has its own cap */
    CU_ASSERT_EQUAL(berth_output_sink_write(&sink, BERTH_STDERR, "0123456789", 10), 0);

    berth_run_result r = {0};
    berth_output_sink_finish(&sink, &r);
    CU_ASSERT_EQUAL(r.out_len, 10);
    CU_ASSERT_EQUAL(memcmp(r.out, "0123456789", 10), 0);
    CU_ASSERT_EQUAL(r.out[10], '\0');
    CU_ASSERT_EQUAL(r.out_total, 18);
    CU_ASSERT_EQUAL(r.err_len, 10);
    CU_ASSERT_EQUAL(r.err_total, 10);
    CU_ASSERT_TRUE(r.truncated);
    /* on_output saw the kept bytes only, and was not called past the cap */
    CU_ASSERT_EQUAL(s.out.len, 10);
    CU_ASSERT_EQUAL(s.calls, 3);
    berth_output_sink_free(&sink);
    free(r.out);
    free(r.err);
    seen_free(&s);
}

static void test_sink_stream_past_cap(void)
{
    seen s = {0};
    berth_run_spec spec = {
        .on_output = on_output, .ud = &s, .output_cap = 4, .stream_past_cap = true};
    berth_output_sink sink;
    berth_output_sink_init(&sink, &spec);
    berth_output_sink_write(&sink, BERTH_STDOUT, "abcdef", 6);
    berth_output_sink_write(&sink, BERTH_STDOUT, "ghij", 4);
    berth_run_result r = {0};
    berth_output_sink_finish(&sink, &r);
    CU_ASSERT_EQUAL(r.out_len, 4);
    CU_ASSERT_STRING_EQUAL(r.out, "abcd");
    CU_ASSERT_EQUAL(r.out_total, 10);
    CU_ASSERT_TRUE(r.truncated);
    CU_ASSERT_EQUAL(s.out.len, 10);
    CU_ASSERT_STRING_EQUAL(s.out.data, "abcdefghij");
    berth_output_sink_free(&sink);
    free(r.out);
    free(r.err);
    seen_free(&s);
}

/* Binary bytes (NULs, invalid UTF-8) pass byte-exact. */
static void test_sink_binary(void)
{
    const char bin[] = {'\0', '\xff', '\xfe', 'a', '\0', '\x80'};
    berth_run_spec spec = {0};
    berth_output_sink sink;
    berth_output_sink_init(&sink, &spec);
    berth_output_sink_write(&sink, BERTH_STDOUT, bin, sizeof bin);
    berth_run_result r = {0};
    berth_output_sink_finish(&sink, &r);
    CU_ASSERT_EQUAL(r.out_len, sizeof bin);
    CU_ASSERT_EQUAL(memcmp(r.out, bin, sizeof bin), 0);
    berth_output_sink_free(&sink);
    free(r.out);
    free(r.err);
}

/* A stream with frames on stdin-echo, stdout, stderr, an empty frame and a
 * large one, fed in every chunk size from 1 up. */
static void build_stream(berth_buf *b, berth_buf *want_out, berth_buf *want_err)
{
    frame(b, 1, "first line\n", 11);
    berth_buf_append(want_out, "first line\n", 11);
    frame(b, 2, "an error\n", 9);
    berth_buf_append(want_err, "an error\n", 9);
    frame(b, 0, "echoed stdin", 12);
    frame(b, 1, "", 0);
    char big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + 3);
    frame(b, 1, big, sizeof big);
    berth_buf_append(want_out, big, sizeof big);
    frame(b, 2, "x", 1);
    berth_buf_append(want_err, "x", 1);
}

static void test_demux_chunking(void)
{
    berth_buf stream = {0}, want_out = {0}, want_err = {0};
    build_stream(&stream, &want_out, &want_err);
    static const size_t chunks[] = {1, 2, 3, 5, 7, 8, 9, 13, 64, 4096, 100000};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        seen s = {0};
        berth_run_spec spec = {.on_output = on_output, .ud = &s};
        berth_output_sink sink;
        berth_output_sink_init(&sink, &spec);
        berth_demux m;
        berth_demux_init(&m);
        int rc = 0;
        for (size_t off = 0; off < stream.len && rc == 0; off += chunks[c]) {
            size_t n = stream.len - off < chunks[c] ? stream.len - off : chunks[c];
            rc = berth_demux_feed(&m, stream.data + off, n, &sink);
            /* a boundary is only reported between frames */
            if (off + n < 8)
                CU_ASSERT_FALSE(berth_demux_at_boundary(&m));
        }
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_TRUE(berth_demux_at_boundary(&m));
        berth_run_result r = {0};
        berth_output_sink_finish(&sink, &r);
        CU_ASSERT_EQUAL(r.out_len, want_out.len);
        CU_ASSERT_EQUAL(r.err_len, want_err.len);
        CU_ASSERT_EQUAL(memcmp(r.out, want_out.data, want_out.len), 0);
        CU_ASSERT_EQUAL(memcmp(r.err, want_err.data, want_err.len), 0);
        CU_ASSERT_EQUAL(s.out.len, want_out.len);
        CU_ASSERT_EQUAL(r.out_total, want_out.len);
        berth_output_sink_free(&sink);
        free(r.out);
        free(r.err);
        seen_free(&s);
    }
    berth_buf_free(&stream);
    berth_buf_free(&want_out);
    berth_buf_free(&want_err);
}

/* Output reaches the sink as soon as it is read, before the frame completes. */
static void test_demux_partial_payload(void)
{
    seen s = {0};
    berth_run_spec spec = {.on_output = on_output, .ud = &s};
    berth_output_sink sink;
    berth_output_sink_init(&sink, &spec);
    berth_demux m;
    berth_demux_init(&m);
    berth_buf b = {0};
    frame(&b, 1, "abcdefgh", 8);
    CU_ASSERT_EQUAL(berth_demux_feed(&m, b.data, 11, &sink), 0);
    CU_ASSERT_EQUAL(s.out.len, 3);
    CU_ASSERT_FALSE(berth_demux_at_boundary(&m));
    CU_ASSERT_EQUAL(berth_demux_feed(&m, b.data + 11, b.len - 11, &sink), 0);
    CU_ASSERT_EQUAL(s.out.len, 8);
    CU_ASSERT_TRUE(berth_demux_at_boundary(&m));
    berth_buf_free(&b);
    berth_output_sink_free(&sink);
    seen_free(&s);
}

/* A truncated stream is not at a boundary: mid-header and mid-payload. */
static void test_demux_not_at_boundary(void)
{
    berth_demux m;
    berth_demux_init(&m);
    CU_ASSERT_TRUE(berth_demux_at_boundary(&m));
    CU_ASSERT_EQUAL(berth_demux_feed(&m, "\x01\0\0", 3, NULL), 0);
    CU_ASSERT_FALSE(berth_demux_at_boundary(&m));
    CU_ASSERT_EQUAL(berth_demux_feed(&m, "\0\0\0\0\x02x", 6, NULL), 0);
    CU_ASSERT_FALSE(berth_demux_at_boundary(&m));
    CU_ASSERT_EQUAL(berth_demux_feed(&m, "y", 1, NULL), 0);
    CU_ASSERT_TRUE(berth_demux_at_boundary(&m));
}

static void test_demux_bad_headers(void)
{
    static const char *const bad[] = {
        "\x03\0\0\0\0\0\0\x01",   /* stream 3 */
        "\xff\0\0\0\0\0\0\x01",   /* stream 255 */
        "\x01\x01\0\0\0\0\0\x01", /* padding */
        "\x01\0\0\x01\0\0\0\x01", /* padding */
        "HTTP/1.1",               /* not a multiplexed stream at all */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        berth_demux m;
        berth_demux_init(&m);
        berth_run_spec spec = {0};
        berth_output_sink sink;
        berth_output_sink_init(&sink, &spec);
        CU_ASSERT_EQUAL(berth_demux_feed(&m, bad[i], 8, &sink), -BERTH_E_PROTOCOL);
        CU_ASSERT_EQUAL(sink.out_total + sink.err_total, 0);
        berth_output_sink_free(&sink);
    }
    /* a bad header after a good frame, split across feeds */
    berth_demux m;
    berth_demux_init(&m);
    CU_ASSERT_EQUAL(berth_demux_feed(&m, "\x01\0\0\0\0\0\0\x01z\x01\0", 11, NULL), 0);
    CU_ASSERT_EQUAL(berth_demux_feed(&m, "\0\x07\0\0\0\0", 6, NULL), -BERTH_E_PROTOCOL);
}

/* The demuxer passes through the sink's cap: memory stays bounded while it
 * keeps draining and counting. */
static void test_demux_cap(void)
{
    berth_run_spec spec = {.output_cap = 100};
    berth_output_sink sink;
    berth_output_sink_init(&sink, &spec);
    berth_demux m;
    berth_demux_init(&m);
    char chunk[4096];
    memset(chunk, 'a', sizeof chunk);
    berth_buf b = {0};
    frame(&b, 1, chunk, sizeof chunk);
    for (int i = 0; i < 256; i++)
        CU_ASSERT_EQUAL(berth_demux_feed(&m, b.data, b.len, &sink), 0);
    CU_ASSERT_EQUAL(sink.out.len, 100);
    CU_ASSERT(sink.out.cap < 4096);
    CU_ASSERT_EQUAL(sink.out_total, 256u * 4096u);
    CU_ASSERT_TRUE(sink.truncated);
    berth_buf_free(&b);
    berth_output_sink_free(&sink);
}

static int add_suites(void)
{
    static const berth_test_case sink_cases[] = {
        {"unlimited", test_sink_unlimited},
        {"empty output is an empty string", test_sink_empty_is_empty_string},
        {"cap and truncation", test_sink_cap},
        {"stream past cap", test_sink_stream_past_cap},
        {"binary bytes", test_sink_binary},
        {NULL, NULL},
    };
    static const berth_test_case demux_cases[] = {
        {"any chunking", test_demux_chunking},
        {"partial payload forwarded", test_demux_partial_payload},
        {"boundary", test_demux_not_at_boundary},
        {"bad headers", test_demux_bad_headers},
        {"cap", test_demux_cap},
        {NULL, NULL},
    };
    if (berth_test_add_suite("output sink", NULL, NULL, sink_cases) ||
        berth_test_add_suite("demux", NULL, NULL, demux_cases))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
