/* bounds.h - every bound in the project, in one place.
 *
 * Exceeding any of these is a clean error (HTTP 400/413/431, a gRPC RESOURCE_EXHAUSTED,
 * a "corrupt" verdict), never a crash or an unbounded allocation. */
#ifndef ER_BOUNDS_H
#define ER_BOUNDS_H

/* gRPC client */
#define GRPC_MAX_MESSAGE (8u * 1024 * 1024) /* largest response message we accept */
#define GRPC_MAX_ENDPOINTS 16
#define GRPC_STREAM_WINDOW (16u * 1024 * 1024) /* per-stream and connection window */
#define GRPC_MAX_FRAME (1u << 20)              /* SETTINGS_MAX_FRAME_SIZE we advertise */
#define GRPC_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define GRPC_MAX_STATUS_MESSAGE 256
#define GRPC_IO_CHUNK (64u * 1024)         /* TLS read chunk and HTTP/2 output buffer */
#define GRPC_TLS_READ_BUFFER (128u * 1024) /* TLS read-ahead buffer (several records) */
#define GRPC_MAX_HEADER_LIST (64u * 1024)  /* SETTINGS_MAX_HEADER_LIST_SIZE we advertise */

/* etcd calls (etcd.c, proto.c) */
#define ETCD_MAX_REQUEST (1536u * 1024)            /* etcd's default --max-request-bytes */
#define PROTO_MAX_DECODE_ALLOC (64u * 1024 * 1024) /* heap one response may take to unpack */

/* httpsget.c: etcd's own HTTP pages (the agent reads /metrics for the backend quota) */
#define HTTPSGET_MAX_HEADER (16u * 1024)
#define HTTPSGET_MAX_METRICS (4u * 1024 * 1024)

/* etcd data dir inspection */
#define DATADIR_MAX_WAL_FILES 4096
#define DATADIR_MAX_WAL_RECORD                                                                     \
    (64u * 1024 * 1024) /* a record longer than a WAL file is corrupt                              \
                         */
#define DATADIR_MAX_SNAP_FILE (512u * 1024 * 1024)
#define DATADIR_MAX_SNAP_FILES 4096

/* configuration */
#define CONFIG_MAX_LIST 16     /* endpoints, peer URLs, initial-cluster entries */
#define CONFIG_MAX_VALUE 4096  /* one flag or env value */
#define CONFIG_MAX_OPTIONS 128 /* entries in one option table */
#define CONFIG_ERR_QUOTE 64    /* bytes of a bad value quoted in an error message */

/* logging */
#define LOG_MAX_MESSAGE 4096   /* log_msg's formatted message; longer is truncated */
#define LOG_FALLBACK_LINE 1024 /* line written when the JSON line cannot be built */

/* io_uring (common/uring.c) */
#define URING_MAX_DEPTH 1024    /* queue_depth is clamped to [1, this] */
#define URING_MAX_IO (1u << 30) /* one read/write request; larger ones are split */

/* HTTP server (agent) */
#define HTTP_MAX_REQUEST_LINE 4096
#define HTTP_MAX_HEADER_BYTES 8192
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_CONNECTIONS 16384
#define HTTP_HEADER_TIMEOUT_MS 10000
#define HTTP_IDLE_TIMEOUT_MS 60000

/* snapshots (agent: snapshot.c, spool.c, saved.c, disksource.c) */
#define SNAPSHOT_SPOOL_MEM                                                                         \
    (2u * 1024 * 1024)                     /* in-memory buffer per stream before spilling          \
                                            * (with the spill blocks: agent RSS <= 16 MiB) */
#define SNAPSHOT_SPOOL_BLOCK (512u * 1024) /* spill/file I/O block (4 KiB aligned) */
#define SNAPSHOT_SPOOL_QD 4                /* spill/file I/O requests in flight */
#define SNAPSHOT_DISK_QD 4                 /* file downloads: block reads in flight */
#define SNAPSHOT_DISK_RING_BLOCKS 4        /* file downloads: ring of 4 blocks (2 MiB, as before) */
#define SNAPSHOT_SPOOL_STALL_MS                                                                    \
    250                                /* etcd's stream may wait this long in all for a client     \
                                        * that fell behind before the rest is spooled to disk */
#define SNAPSHOT_MAX_CONCURRENCY 16    /* --snapshot-concurrency upper bound */
#define SNAPSHOT_MAX_FILE_STREAMS 8    /* saved-file and disk-source downloads at once */
#define SNAPSHOT_MAX_KEEP 10000        /* --snapshot-keep upper bound */
#define SNAPSHOT_MAX_LISTED 4096       /* saved snapshots listed / scanned */
#define SNAPSHOT_IDLE_TIMEOUT_MS 30000 /* longest gap between two etcd snapshot frames */
#define SNAPSHOT_STATUS_TIMEOUT_MS 5000
#define SNAPSHOT_RETRY_AFTER_S 5 /* Retry-After on 429 */

#endif
