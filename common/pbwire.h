/* pbwire.h - the protobuf wire format's smallest pieces, shared by the hand-written walkers
 * (datadir.c: raftpb records; proto.c: snapshot messages parsed in place). Everything else goes
 * through protobuf-c. */
#ifndef ER_PBWIRE_H
#define ER_PBWIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* Wire types. */
#define PB_VARINT 0
#define PB_FIXED64 1
#define PB_LEN 2
#define PB_FIXED32 5
#define PB_MAX_VARINT 10 /* bytes of a 64-bit varint */

/* A varint at p[*off] (n bytes in all) into v, advancing *off; -EBADMSG if it runs past the end
 * or over 10 bytes. */
static inline int pb_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < PB_MAX_VARINT; i++) {
        if (*off >= n)
            return -EBADMSG;
        uint8_t b = p[(*off)++];
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *v = x;
            return 0;
        }
    }
    return -EBADMSG; /* gogo: ErrIntOverflow */
}

#endif
