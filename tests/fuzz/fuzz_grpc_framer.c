/* fuzz_grpc_framer.c - libFuzzer target for the gRPC message framer.
 *
 * The first bytes choose the size limit and how the rest is cut into feeds, so every split of
 * prefixes and payloads is reachable. Checks the framer's own invariants. The same bytes also
 * go through the trailer parsing (grpc-status, percent-decoded grpc-message). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "grpc.h"

#define FUZZ_MAX_MESSAGE 4096

struct count {
    size_t messages, bytes, max;
    int cancel_at;
};

static int on_message(void *arg, const uint8_t *msg, size_t len)
{
    struct count *c = arg;
    volatile uint8_t sink = 0;

    if (len > c->max || !msg)
        abort();
    for (size_t i = 0; i < len; i++) /* every byte readable (ASan) */
        sink ^= msg[i];
    (void)sink;
    c->messages++;
    c->bytes += len;
    return c->cancel_at && (size_t)c->cancel_at == c->messages;
}

/* "status\nmessage" -> grpc_status_from_trailers */
static void fuzz_trailers(const uint8_t *data, size_t size)
{
    struct grpc_status st;
    char *s = fuzz_copy_str(data, size), *nl;

    if (!s)
        return;
    nl = strchr(s, '\n');
    if (nl)
        *nl = '\0';
    grpc_status_from_trailers(&st, s, nl ? nl + 1 : NULL);
    if (strlen(st.message) >= sizeof st.message)
        abort();
    if (!st.transport && (st.code < 0 || st.code > 1000000))
        abort();
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct grpc_framer f;
    struct count c = {0};
    size_t pos, fed = 0;
    int rv = 0;

    if (size < 3)
        return 0;
    /* byte 0: limit (0 = default), byte 1: cancel after n messages (0 = never) */
    c.max = data[0] ? (size_t)data[0] * 16 : GRPC_MAX_MESSAGE;
    c.cancel_at = data[1] & 7;
    grpc_framer_init(&f, data[0] ? c.max : 0);
    if (!data[0])
        c.max = GRPC_MAX_MESSAGE;
    /* the rest: [piece length byte][piece]... */
    pos = 2;
    while (pos < size && rv == 0) {
        size_t piece = data[pos++];
        if (piece > size - pos)
            piece = size - pos;
        rv = grpc_framer_feed(&f, data + pos, piece, on_message, &c);
        fed += piece;
        pos += piece;
    }
    if (rv != 0 && rv != -EMSGSIZE && rv != -EPROTO && rv != -ECANCELED && rv != -ENOMEM)
        abort();
    if (rv == -ECANCELED && (c.cancel_at == 0 || c.messages != (size_t)c.cancel_at))
        abort();
    /* every delivered message accounts for its 5-byte prefix */
    if (c.bytes + 5 * c.messages > fed)
        abort();
    if (rv == 0 && grpc_framer_idle(&f) && c.bytes + 5 * c.messages != fed)
        abort();
    grpc_framer_free(&f);
    fuzz_trailers(data, size);
    return 0;
}
