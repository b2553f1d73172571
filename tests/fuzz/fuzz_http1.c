/* fuzz_http1.c - the HTTP/1.1 request parser layer (agent/http1.c) on arbitrary bytes cut into
 * arbitrary pieces: the first byte seeds the piece sizes. Checks the parser's own invariants
 * (consumed never exceeds what it was given, requests carry sane strings) and renders a response
 * head for each request. The socket side is covered by tests/unit/test_server.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http1_parser *parser;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!parser && !(parser = malloc(sizeof *parser)))
        return 0;
    unsigned seed = data[0];
    data++;
    size--;
    http1_parser_init(parser);
    size_t pos = 0;
    while (pos < size) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % 64;
        if (piece > size - pos)
            piece = size - pos;
        size_t off = 0;
        while (off < piece) {
            size_t used;
            enum http1_result r = http1_parse(parser, data + pos + off, piece - off, &used);
            if (used > piece - off)
                abort();
            off += used;
            if (r == HTTP1_ERROR) {
                if (parser->error_status < 400 || !parser->error_msg)
                    abort();
                return 0;
            }
            if (r == HTTP1_NEED_MORE) {
                if (off != piece)
                    abort();
                break;
            }
            const struct http_request *req = &parser->req;
            if (!req->method || !req->path || !req->query || req->n_headers > HTTP_MAX_HEADERS)
                abort();
            size_t total = strlen(req->path) + strlen(req->query);
            for (size_t i = 0; i < req->n_headers; i++)
                total += strlen(req->headers[i].name) + strlen(req->headers[i].value);
            if (total > HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES)
                abort();
            (void)http_request_header(req, "host");
            char v[16];
            (void)http_query_param(req, "verbose", v, sizeof v);
            struct http_response resp = {.status = 200, .content_type = "text/plain"};
            const char *h = http_request_header(req, "x-echo");
            if (h)
                http_response_add_header(&resp, "X-Echo", h);
            struct http_buf b = {0};
            http1_format_head(&b, &resp, (int64_t)total, parser->keep_alive);
            http_buf_free(&b);
            http1_parser_next(parser);
        }
        pos += piece;
    }
    return 0;
}
