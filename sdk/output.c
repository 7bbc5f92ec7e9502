/*
 * output.c: the capped output sink and the Engine's 8-byte stream demuxer,
 * shared by the socket and the CLI backend so both truncate and count alike.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "docker_impl.h"

void berth_output_sink_init(berth_output_sink *s, const berth_run_spec *spec)
{
    memset(s, 0, sizeof *s);
    s->spec = spec;
}

int berth_output_sink_write(berth_output_sink *s, berth_stream stream, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    berth_buf *b = stream == BERTH_STDERR ? &s->err : &s->out;
    uint64_t *total = stream == BERTH_STDERR ? &s->err_total : &s->out_total;
    size_t cap = s->spec ? s->spec->output_cap : 0;

    *total += len;
    size_t keep = len;
    if (cap) {
        size_t room = b->len < cap ? cap - b->len : 0;
        if (keep > room) {
            keep = room;
            s->truncated = true;
        }
    }
    int rc = 0;
    if (keep && berth_buf_append(b, data, keep) != 0)
        rc = -BERTH_E_NOMEM;
    if (s->spec && s->spec->on_output) {
        size_t fwd = s->spec->stream_past_cap ? len : keep;
        if (fwd)
            s->spec->on_output(s->spec->ud, stream, data, fwd);
    }
    return rc;
}

/* An empty but non-NULL string, so callers may print the result unchecked. */
static char *steal_or_empty(berth_buf *b, size_t *len)
{
    if (b->data)
        return berth_buf_steal(b, len);
    *len = 0;
    return calloc(1, 1);
}

void berth_output_sink_finish(berth_output_sink *s, berth_run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = steal_or_empty(&s->out, &r->out_len);
    r->err = steal_or_empty(&s->err, &r->err_len);
    r->out_total = s->out_total;
    r->err_total = s->err_total;
    r->truncated = s->truncated;
    s->out_total = s->err_total = 0;
    s->truncated = false;
}

void berth_output_sink_free(berth_output_sink *s)
{
    berth_buf_free(&s->out);
    berth_buf_free(&s->err);
}

void berth_demux_init(berth_demux *m)
{
    memset(m, 0, sizeof *m);
}

int berth_demux_feed(berth_demux *m, const char *data, size_t len, berth_output_sink *sink)
{
    const unsigned char *p = (const unsigned char *)data;
    while (len > 0) {
        if (m->remaining == 0 && m->hdr_len < 8) {
            size_t take = 8 - m->hdr_len;
            if (take > len)
                take = len;
            memcpy(m->hdr + m->hdr_len, p, take);
            m->hdr_len += take;
            p += take;
            len -= take;
            if (m->hdr_len < 8)
                break;
            if (m->hdr[0] > 2 || m->hdr[1] || m->hdr[2] || m->hdr[3])
                return -BERTH_E_PROTOCOL;
            m->stream = m->hdr[0];
            m->remaining = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16 |
                           (uint32_t)m->hdr[6] << 8 | (uint32_t)m->hdr[7];
            m->hdr_len = 0;
            continue;
        }
        size_t take = m->remaining < len ? m->remaining : len;
        if (m->stream != 0 && sink) {
            int rc = berth_output_sink_write(sink, (berth_stream)m->stream, (const char *)p, take);
            if (rc != 0)
                return rc;
        }
        m->remaining -= (uint32_t)take;
        p += take;
        len -= take;
    }
    return 0;
}

bool berth_demux_at_boundary(const berth_demux *m)
{
    return m->hdr_len == 0 && m->remaining == 0;
}
