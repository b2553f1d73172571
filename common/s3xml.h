/* s3xml.h - the few S3 XML answers we read (ListObjectsV2, ListMultipartUploads,
 * InitiateMultipartUpload, CompleteMultipartUpload, Error), with a small bounded scanner: no DOM,
 * no allocation, input capped at STORE_MAX_XML. Requests and their XML bodies are store_s3.c's. */
#ifndef ER_S3XML_H
#define ER_S3XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bounds.h"

struct s3xml_object {
    char key[STORE_MAX_NAME + 1];
    uint64_t size;
    time_t mtime; /* LastModified */
};

struct s3xml_upload {
    char key[STORE_MAX_NAME + 1];
    char upload_id[STORE_MAX_UPLOAD_ID + 1];
    time_t initiated;
};

/* The text of the first <tag>...</tag> (tag without brackets) at or after *pos in xml[0..len),
 * entity-decoded into out; *pos (may be NULL) moves past the closing tag. Returns the decoded
 * length, -ENOENT (no such element), -ENOSPC (out too small), -EINVAL (unterminated, a bad
 * entity, a nested '<' or a NUL byte inside a leaf). */
int s3xml_value(const char *xml, size_t len, size_t *pos, const char *tag, char *out,
                size_t out_len);

/* The contents (raw, not decoded) of the next <tag>...</tag> block at or after *pos: *start and
 * *end bound it; *pos moves past it. Returns 0 or -ENOENT / -EINVAL. */
int s3xml_block(const char *xml, size_t len, size_t *pos, const char *tag, size_t *start,
                size_t *end);

/* "2026-12-03T21:55:00.000Z" (fraction optional) -> UTC seconds. 0 or -EINVAL. */
int s3xml_time(const char *s, time_t *out);

/* ListObjectsV2: cb for each <Contents> (a nonzero return stops and is returned); *truncated
 * from <IsTruncated>, next from <NextContinuationToken> ("" if none). Returns 0, cb's value, or
 * -EINVAL (malformed: no closing </ListBucketResult>, a Contents without Key or Size, a bad
 * number or date). */
int s3xml_list_objects(const char *xml, size_t len,
                       int (*cb)(void *arg, const struct s3xml_object *o), void *arg,
                       bool *truncated, char *next, size_t next_len);

/* ListMultipartUploads: cb for each <Upload>; *truncated, and the markers for the next page
 * (<NextKeyMarker>, <NextUploadIdMarker>, "" if none). Same returns as above. */
int s3xml_list_uploads(const char *xml, size_t len,
                       int (*cb)(void *arg, const struct s3xml_upload *u), void *arg,
                       bool *truncated, char *next_key, size_t next_key_len, char *next_upload,
                       size_t next_upload_len);

/* <Error><Code>..</Code><Message>..</Message>: 0 with both filled ("" when absent), -ENOENT if
 * the body is not an S3 error. */
int s3xml_error(const char *xml, size_t len, char *code, size_t code_len, char *msg,
                size_t msg_len);

#endif
