#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest password file read: a 65535-byte password, a newline and one byte to tell. */
#define SECRET_FILE_MAX (65535 + 2)

/* What a file of type `mode` is, for messages: "a FIFO". */
static const char *file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "a special file";
}

int secret_open(const char *path, bool dir, const char **kind, struct stat *stp)
{
	struct stat st;
	int fd, err;

	*kind = NULL;
	if (stat(path, &st) != 0)
		return -1;
	if (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) {
		fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
		if (fd < 0)
			return -1;
		if (fstat(fd, &st) != 0) {
			err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		if (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) {
			*stp = st;
			return fd;
		}
		close(fd);
	}
	*kind = file_kind(st.st_mode);
	errno = 0;
	return -1;
}

int secret_read_all(int fd, char **out, size_t *len)
{
	char *buf = NULL;
	size_t used = 0, cap = 0;
	ssize_t got;

	for (;;) {
		if (cap - used < 4096) {
			char *grown;

			if (cap > SIZE_MAX / 2 - 1) {
				free(buf);
				return EFBIG;
			}
			cap = cap ? cap * 2 : 16384;
			grown = realloc(buf, cap);
			if (grown == NULL) {
				free(buf);
				return ENOMEM;
			}
			buf = grown;
		}
		got = read(fd, buf + used, cap - used - 1);
		if (got < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			free(buf);
			return err;
		}
		if (got == 0)
			break;
		used += (size_t)got;
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	return 0;
}

const char *secret_read_line(const char *path, size_t max, char **out, int *err,
                             const char **kind)
{
	char *buf = NULL, *nl;
	size_t len = 0;
	struct stat st;
	ssize_t got;
	int fd;

	*out = NULL;
	*err = 0;
	fd = secret_open(path, false, kind, &st);
	if (fd < 0) {
		*err = errno;
		goto fail;
	}
	buf = malloc(SECRET_FILE_MAX + 1);
	if (buf == NULL) {
		*err = ENOMEM;
		goto fail;
	}
	while (len < SECRET_FILE_MAX && (got = read(fd, buf + len, SECRET_FILE_MAX - len)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			*err = errno;
			goto fail;
		}
		len += (size_t)got;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	close(fd);
	fd = -1;
	buf[len] = '\0';
	nl = memchr(buf, '\n', len);
	if (nl != NULL)
		len = (size_t)(nl - buf);
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		free(buf);
		return "holds a NUL byte in its first line";
	}
	if (len == 0) {
		free(buf);
		return "is empty (its first line is the password)";
	}
	if ((max > 0 && len > max) || (nl == NULL && len == SECRET_FILE_MAX)) {
		free(buf);
		return "holds a password that is too long";
	}
	*out = buf;
	return NULL;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

bool secret_credential_path(const char *name, char *buf, size_t size)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	if (dir == NULL || dir[0] == '\0')
		return false;
	snprintf(buf, size, "%s/%s", dir, name);
	return true;
}

/* Whether `path` is below directory `dir` (given without a trailing slash or with one). */
static bool below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return n > 0 && strncmp(path, dir, n) == 0 && path[n] == '/';
}

bool secret_credential_unseen(const char *path, int *err)
{
	const char *env = getenv("CREDENTIALS_DIRECTORY");
	char dir[4096];
	char *slash;

	if (!(env != NULL && env[0] != '\0' && below(path, env)) && !below(path, "/run/credentials"))
		return false;
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return false;
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return false;
	*slash = '\0';
	/* Missing, or there but not ours to enter: unseen either way. */
	if (access(dir, X_OK) == 0)
		return false;
	*err = errno;
	return *err == EACCES || *err == ENOENT || *err == ENOTDIR;
}

int secret_check(const char *path, bool dir, const char **kind)
{
	struct stat st;
	int fd = secret_open(path, dir, kind, &st);

	if (fd < 0)
		return *kind != NULL ? -1 : errno;
	close(fd);
	return 0;
}

bool secret_public(const char *path, unsigned *mode)
{
	struct stat st;

	if (stat(path, &st) != 0 || !(st.st_mode & S_IROTH))
		return false;
	*mode = (unsigned)(st.st_mode & 07777);
	return true;
}
