/*
 * secret: reading configuration input without ever blocking: the
 * configuration files, password files, systemd credentials, and the TLS
 * files checked at load.  A reload loads in the event loop and -t must
 * not hang, so nothing here waits on a FIFO or a device.  No messages:
 * callers are told what went wrong and phrase it.
 */
#ifndef BRIDGE_SECRET_H
#define BRIDGE_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/*
 * Opens `path` to read, as a regular file, or as a directory when `dir`.
 * The open does not block, so a FIFO or a device whose open waits is
 * refused at once; stat() comes first so that a device is not opened at
 * all (opening some has effects), and fstat() after the open decides, as
 * the path may have changed in between.  Returns the descriptor
 * (close-on-exec; O_NONBLOCK, which reads of a regular file ignore) and
 * fills *st; or -1 with errno set and *kind NULL; or -1 with errno 0 and
 * *kind saying what the path is instead ("a FIFO").
 */
int secret_open(const char *path, bool dir, const char **kind, struct stat *st);

/*
 * Reads what is left of `fd` into a fresh NUL-terminated buffer (*out,
 * *len).  Returns 0, or an errno value.
 */
int secret_read_all(int fd, char **out, size_t *len);

/*
 * Reads the first line of `path`, without its newline, into a fresh *out:
 * a password of at most `max` bytes (0: the largest this reads, 65535).
 * Returns NULL with *out set; or NULL with *out NULL and either *err (an
 * errno value) or *kind (what the path is instead of a regular file) set;
 * or, when the file holds no usable password, why: the end of a sentence
 * that starts "NAME names PATH, which" ("is empty (...)").
 */
const char *secret_read_line(const char *path, size_t max, char **out, int *err,
                             const char **kind);

/*
 * The path of the systemd credential `name` in $CREDENTIALS_DIRECTORY,
 * into buf.  Returns false when the variable is not set (or empty).
 */
bool secret_credential_path(const char *name, char *buf, size_t size);

/*
 * Whether `path` is a systemd credential that this process cannot see: it
 * lies in $CREDENTIALS_DIRECTORY or under /run/credentials/, and its
 * directory does not exist or cannot be entered (systemd 252 leaves
 * /run/credentials mode 000 for ExecReload= in a sandbox; a user other
 * than the unit's cannot enter the unit's directory).  Sets *err to the
 * errno of that lookup.
 */
bool secret_credential_unseen(const char *path, int *err);

/*
 * Whether `path` can be opened for reading, as a regular file or as a
 * directory when `dir`: 0, or an errno value, or -1 with *kind saying what
 * it is instead.
 */
int secret_check(const char *path, bool dir, const char **kind);

/* Whether every user may read `path`; *mode then holds its permission bits. */
bool secret_public(const char *path, unsigned *mode);

#endif
