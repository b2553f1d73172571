/* dirsync.h - making a directory entry durable: fsync of a directory, or of the directory that
 * holds a path (after a create, rename or unlink in it). Writing and syncing the files
 * themselves is the callers'. */
#ifndef ER_DIRSYNC_H
#define ER_DIRSYNC_H

/* fsync of the directory dir. Returns 0 or a negative errno (open's or fsync's). */
int dirsync(const char *dir);

/* fsync of the directory holding path: the part before its last '/' ("/" for "/x", the working
 * directory for a bare name). Returns 0, -ENAMETOOLONG (above PATH_MAX) or dirsync's error. */
int dirsync_parent(const char *path);

#endif
