/* bounds.h - every limit in the project (sizes, counts, timeouts, caches), in one place;
 * facts of a format or protocol (WAL record types, the HTTP/2 preface) stay with their parser.
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
#define HTTP_ERROR_BODY_MAX 512 /* {"error":...,"status":N}: a longer message is cut */
/* One request's method, target, header names and values with their NULs, in one store (the
 * same for HTTP/1.1 and HTTP/2): line + header bytes + two NULs per header + slack. */
#define HTTP_REQUEST_STORE_MAX                                                                     \
    (HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES + 2 * HTTP_MAX_HEADERS + 64)
#define HTTP_DONE_PATH_MAX 256        /* request path kept for the on-done (metrics) callback */
#define HTTP_MAX_EXTRA_HEADERS 8      /* extra response headers a handler may add */
#define HTTP_EXTRA_HEADER_STORAGE 512 /* their values, copied */

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
#define SNAPSHOT_RETRY_AFTER_S 5       /* Retry-After on 429 */
#define SNAPSHOT_FS_WORKERS 4          /* threads making the file calls of snapshot requests */
#define SNAPSHOT_FS_QUEUE 16           /* requests waiting for one; more get 503 at once */
#define SNAPSHOT_FS_TIMEOUT_MS 10000   /* a file call (or the wait for a worker) longer: 503 */
#define SNAPJOB_WATCHDOG_TICK_MS 250   /* how often the deadlines above are checked */
#define SNAPSHOT_SHUTDOWN_WAIT_MS 5000 /* shutdown waits for busy threads, then leaves */

/* HTTP server (agent: server.c, http1.c, http2.c, http_util.c) */
#define SERVER_MAX_REQUEST_BODY 4096 /* POST bodies above this: 413 */
#define SERVER_MAX_OUTPUT                                                                          \
    (256u * 1024)                      /* per-connection output kept before we stop                \
                                        * reading requests from that client */
#define SERVER_H2_MAX_STREAMS 100      /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define SERVER_MAX_ADDR 128            /* "ip:port" strings */
#define SERVER_LOW_WATER (64u * 1024)  /* keep pulling a body source while less is queued */
#define SERVER_READ_CHUNK (64u * 1024) /* one read()/SSL_read() into the loop's buffer */
#define SERVER_TLS_COALESCE (SERVER_MAX_OUTPUT + SERVER_MAX_OUTPUT / 256)
#define SERVER_PEER_MAX 64
#define SERVER_BACKLOG 1024
#define SERVER_MAX_EVENTS 256
#define SERVER_ACCEPT_BATCH 64
#define SERVER_READ_BUDGET 4       /* reads per connection per event, for fairness */
#define SERVER_SCRATCH_CACHE 64    /* idle per-request scratch blocks (HTTP/1 parsers) kept */
#define SERVER_ACCEPT_PAUSE_MS 100 /* after EMFILE/ENFILE */
#define SERVER_BUF_CACHE 64        /* idle output buffers kept for reuse */
#define SERVER_BUF_SIZE                                                                            \
    4096 /* an output buffer's first size (http_util.c) and that of                                \
          * the cached ones (server.c): an idle connection holds none */
/* Body sources are pulled in large pieces, up to SERVER_MAX_OUTPUT queued: fewer source calls
 * and fewer, larger writes for big bodies (snapshots); small ones are one pull anyway. */
#define H1_PULL_CHUNK (64u * 1024)
#define H2_MAX_TRAILERS 8 /* trailers taken from a body source */
#define H2_NAME_MAX 64    /* a response header name, lower-cased on the stack */

/* agent: routes, metrics, probe cache, probes, promotion */
#define ROUTES_MAX 32
#define ROUTES_VERBOSE_MAX 4096 /* ?verbose body: a few lines per check */
#define ROUTES_JSON_STACK 8192  /* JSON rendered on the stack first */
#define ROUTES_HEALTH_BODY 2048 /* a cached probe body; longer ones are rendered each time */
#define METRICS_MAX_BYTES (256u * 1024) /* rendered text; more is an error (-E2BIG) */
#define METRICS_MAX_SOURCES 8
#define METRICS_BUF_INITIAL 4096  /* first size of the rendering buffer; doubles up to the max */
#define CACHE_MAX_ERROR 256       /* one error message kept per call */
#define CACHE_MAX_STATUS_ERRORS 4 /* StatusResponse.errors entries kept */
#define CACHE_MAX_ALARMS 16
#define CACHE_MAX_MEMBERS 16
#define CACHE_MAX_URLS 4 /* peer or client URLs kept per member */
#define CACHE_MAX_URL 256
#define CACHE_MAX_NAME 128
#define CACHE_MAX_HTTP_SERIES 128 /* distinct (path, code) pairs counted; more are dropped */
#define HEALTH_MAX_CHECKS 8
#define PROBE_CLUSTER_INTERVAL_MS 5000
#define PROBE_MEMBER_TIMEOUT_MS 1000 /* per member Status in the cluster table */
#define PROBE_MIN_TIMEOUT_MS 500     /* local calls time out after clamp(interval, min, max) */
#define PROBE_MAX_TIMEOUT_MS 5000
#define PROBE_TICK_MS 1000 /* cluster thread wake-up: promotion tries need this granularity */
#define PROBE_KEY_MAX (CACHE_MAX_URLS * CACHE_MAX_URL) /* a channel's joined endpoint list */
#define PROMOTE_BACKOFF_MIN_MS 1000
#define PROMOTE_BACKOFF_MAX_MS 30000
#define PROMOTE_TIMEOUT_MS 5000
#define PROMOTE_KEY_MAX (GRPC_MAX_ENDPOINTS * CACHE_MAX_URL)
#define AGENT_STOP_GRACE_MS 5000
#define AGENT_MIN_INTERVAL_MS 100
#define AGENT_MAX_INTERVAL_MS 60000
#define AGENT_MAX_LIVEZ_INTERVALS 3600
#define AGENT_MAX_MAINT_MS (UINT64_C(7) * 24 * 3600 * 1000) /* maintenance intervals, timeouts */
/* day-2 maintenance (agent/maint*.c) */
#define MAINT_TICK_MS 1000             /* the thread's wake-up */
#define MAINT_CALL_TIMEOUT_MS 2000     /* Status, Range, MoveLeader, Compact, Alarm */
#define MAINT_HASHKV_TIMEOUT_MS 120000 /* HashKV scans the whole backend */
#define MAINT_QUOTA_REFRESH_MS 600000  /* etcd's /metrics is read this often per member */
#define MAINT_METRICS_TIMEOUT_MS 3000
#define MAINT_MAX_SKIP_REASONS 8
#define MAINT_STOP_GRACE_MS 2000
#define MAINT_PEER_MAX_BYTES (16u * 1024) /* GET /hashkv of the leader's agent (maint_peer.h) */
#define MAINT_PLAN_MAX_MEMBERS 16
#define MAINT_PLAN_REASON_MAX 256
/* A member is "caught up" (may take leadership) when its applied index is at most this far
 * behind the leader's committed index. */
#define MAINT_PLAN_CAUGHT_UP_LAG 100
/* Under NOSPACE a member is defragmented when at least this much of its db is free (after a
 * defrag only a few pages are). */
#define MAINT_PLAN_NOSPACE_MIN_FREE (1024 * 1024)
#define MAINT_TABLE_MAX_BYTES (64u * 1024)
#define AGENT_MAX_SNAPSHOT_INTERVAL_MS (UINT64_C(7) * 24 * 3600 * 1000) /* a week */

/* common: gRPC client internals, TLS, io_uring, logging */
#define GRPC_FRAMER_MIN_BUF 4096
#define GRPC_MAX_CALL_ATTEMPTS 2 /* a refused (never processed) stream is retried once */
#define GRPC_MAX_HOST 256
#define GRPC_MAX_AUTHORITY (GRPC_MAX_HOST + 8)
#define GRPC_MAX_CONTENT_TYPE 64
#define GRPC_MAX_STATUS_VALUE 16
#define GRPC_READ_BATCH 16 /* TLS reads per loop turn before re-checking deadlines */
#define TLS_RELOAD_CHECK_MS 1000
#define TLS_MAX_HOST 256      /* a DNS name is at most 253 bytes */
#define TLS_MAX_PEM_BLOCKS 16 /* blocks looked at for the key (a chain, EC PARAMETERS) */
#define URING_REASON_LEN 160
#define URING_SUBMIT_RETRIES 1000 /* EAGAIN/EBUSY from io_uring_submit before giving up */
#define LOG_TIME_LEN 32           /* "2026-11-23T22:31:46.123Z" plus room */

/* reset-member (init/) */
#define RM_MIN_TIMEOUT_MS 100
#define RM_MAX_TIMEOUT_MS (10 * 60 * 1000)              /* --timeout */
#define RM_MAX_RESTORE_TIMEOUT_MS (24 * 60 * 60 * 1000) /* --restore-timeout */
#define RM_MAX_KEEP_BACKUPS 100
#define RM_MAX_URL 512 /* an endpoint derived from a peer URL */
#define ACT_MAX_SUFFIX 100
#define ACT_NFTW_FDS 16
#define OBSERVE_MIN_CALL_MS 200 /* below this a call is not worth starting */
#define RESTORE_NFTW_FDS 16
#define RM_MAX_BUMP_REVISION                                                                       \
    1000000000000000ull               /* --restore-bump-revision (etcd: int64 revisions) */
#define RESTORE_MAX_HELP (64u * 1024) /* `<tool> snapshot restore --help` output read */
#define RESTORE_HELP_TIMEOUT_MS 10000 /* ... and how long it may take */

/* backups: retention (common/retention.c), AWS credential files (common/aws_creds.c), Azure
 * Blob (common/azure_sign.c) */
#define RETENTION_MAX_COUNT 100000      /* periods or backups one --backup-keep rule keeps */
#define RETENTION_MAX_BACKUPS 1000000   /* backups one retention_decide call judges */
#define RETENTION_FUTURE_SLACK_S 3600   /* a backup dated later than now + this is "future" */
#define AWS_CREDS_MAX_FILE (64u * 1024) /* a credentials or config file */
#define AWS_CREDS_MAX_LINE 4096         /* one line of it */
#define AWS_CREDS_MAX_KEY 128           /* a profile name, key or section name */
#define AWS_CREDS_MAX_VALUE 4096        /* a value (session tokens run to ~2 KiB) */
#define AWS_CREDS_EXPIRY_SKEW_S 60      /* credentials this close to expiry count as expired */
#define AZURE_MAX_ACCOUNT 64            /* storage account names are 3-24 chars */
#define AZURE_MAX_KEY_B64 128           /* AZURE_STORAGE_KEY: base64 of 64 bytes */
#define AZURE_MAX_SAS 2048              /* AZURE_STORAGE_SAS_TOKEN */
#define AZURE_MAX_SIGN_HEADERS 32       /* x-ms-* headers in one signed request */
#define AZURE_MAX_STRING_TO_SIGN 8192   /* canonical string of one request */

/* age encryption and the backup filter chain (common/age.c, common/bech32.c, common/codec.c) */
#define BECH32_MAX_LEN 90              /* BIP-173's limit on a whole bech32 string */
#define BECH32_MAX_HRP 83              /* BIP-173's limit on the human-readable part */
#define AGE_CHUNK (64u * 1024)         /* STREAM plaintext chunk (fixed by the age v1 format) */
#define AGE_MAX_HEADER (64u * 1024)    /* header bytes the decryptor buffers before refusing */
#define AGE_MAX_STANZAS 256            /* recipient stanzas in one header */
#define AGE_MAX_STANZA_ARGS 16         /* arguments on one stanza line */
#define AGE_MAX_RECIPIENTS 64          /* recipients one file is encrypted to / a file lists */
#define AGE_MAX_IDENTITIES 64          /* identities one identity file holds */
#define AGE_MAX_KEY_FILE (256u * 1024) /* a recipients or identity file */
#define AGE_MAX_KEY_LINE 1024          /* one line of such a file */
#define CODEC_ZSTD_DEFAULT_LEVEL 3     /* zstd's own default */
#define CODEC_ZSTD_MAX_LEVEL 19        /* highest level without --ultra (its windows grow large) */
#define CODEC_ZSTD_MAX_WINDOW_LOG 27   /* decoder: largest window a frame may ask */

/* divergent.c: the "<data-dir>.divergent" marker (HashKV named the member divergent) */
#define DIVERGENT_MAX_BYTES 1024           /* marker file size */
#define DIVERGENT_MAX_REVISION (1LL << 53) /* exact in a JSON number */

/* backup stores (common/store*.c, s3xml.c, sigv4.c) */
#define STORE_MAX_NAME 1024               /* object name (S3's key limit) */
#define STORE_MAX_URL 4096                /* one request URL */
#define STORE_MAX_ERROR_BODY (64u * 1024) /* an error answer kept for its <Code> */
#define STORE_MAX_XML (4u * 1024 * 1024)  /* one listing/answer body */
#define STORE_MAX_LISTED 100000           /* objects one list call reports */
#define STORE_MAX_ETAG 128
#define STORE_MAX_UPLOAD_ID 1024
#define STORE_PART_MIN (16ull << 20) /* multipart part size bounds (S3 allows 5 MiB..5 GiB) */
#define STORE_PART_MAX (64ull << 20)
#define STORE_PART_DEFAULT (16ull << 20)
#define STORE_MAX_PARTS 10000   /* S3's limit: 8 GiB fits at >= 1 MiB parts */
#define STORE_RETRY_ATTEMPTS 5  /* tries of one request on a transient error */
#define STORE_RETRY_BASE_MS 250 /* backoff: a random wait in [d/2, d], d = base * 2^retry ... */
#define STORE_RETRY_MAX_MS 8000 /* ... capped here */
#define STORE_CONNECT_TIMEOUT_MS 10000
#define STORE_LOW_SPEED_SECONDS 30       /* a request that moved no byte for this long failed */
#define STORE_IO_CHUNK (1u << 20)        /* file reads for hashing and copying */
#define STORE_STALE_UPLOAD_S (24 * 3600) /* multipart uploads older than this are abandoned */
/* A backup keeps this many parts in flight at once (aws s3 cp: 10; our parts are larger), and
 * what the stream leaves when it ends goes as up to that many parts of at least
 * STORE_TAIL_PART_MIN (S3's minimum part size) side by side, not as one last part after it. */
#define STORE_UPLOAD_STREAMS 2
#define STORE_TAIL_PART_MIN (5ull << 20)
#define CURL_POOL_IDLE 4 /* a store's idle connections kept for reuse */

/* off-node backups (agent/backup.c) */
#define BACKUP_TICK_MIN_MS 1000  /* the schedule looks at the turn at most this often */
#define BACKUP_TICK_MAX_MS 60000 /* ... and at least this often */
#define BACKUP_GRACE_MIN_MS 5000 /* rank grace: interval / 4 clamped to these */
#define BACKUP_GRACE_MAX_MS (10 * 60 * 1000)
#define BACKUP_MAX_LAG 1000         /* raft entries a member may trail and still back up */
#define BACKUP_ENC_CHUNK (1u << 20) /* the etcd stream hands the encoder thread this much ... */
#define BACKUP_ENC_BUFS 3           /* ... in this many buffers (memory: their product) */
#define BACKUP_VERIFY_DEFAULT_MS (24ull * 3600 * 1000) /* --backup-verify-interval default */
#define BACKUP_MAX_MANIFEST (64u * 1024)               /* one manifest read for GET /backups */
#define BACKUP_MAX_LISTED 1000                         /* backups GET /backups shows */

#endif
