#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
/*
 * Parses a whole decimal number with no sign, no blanks and no trailing
 * characters.  Returns 0, or -1 when `s` is anything else.
 */
static int notify__parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/*
 * The built-in equivalent of sd_watchdog_enabled(): the interval systemd
 * expects pings at, in microseconds, or 0 when there is no watchdog for
 * this process ($WATCHDOG_PID names another one) or the variables are
 * malformed.
 */
static uint64_t notify__watchdog_usec(void)
{
	const char *pid_s = getenv("WATCHDOG_PID");
	uint64_t usec, pid;

	if (notify__parse_u64(getenv("WATCHDOG_USEC"), &usec) != 0 || usec == 0)
		return 0;
	if (pid_s) {
		if (notify__parse_u64(pid_s, &pid) != 0 || pid != (uint64_t)getpid())
			return 0;
	}
	return usec;
}
#endif

/*
 * Opens the sender's socket for $NOTIFY_SOCKET: a filesystem path,
 * or an abstract socket written with a leading '@'.  Returns 0, or -1
 * after logging why.
 */
static int notify__open(struct notify *n, const char *path)
{
	size_t len = strlen(path);

	if ((path[0] != '/' && path[0] != '@') || len < 2 || len > sizeof(n->addr.sun_path)) {
		log_warn("notify: ignoring NOTIFY_SOCKET '%s': not an absolute path or an "
		         "abstract socket name that fits a socket address", path);
		return -1;
	}
	memset(&n->addr, 0, sizeof(n->addr));
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0';
	/* A path is NUL-terminated when there is room; an abstract name is exactly len bytes. */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	                         (path[0] == '/' && len < sizeof(n->addr.sun_path)));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		log_warn("notify: cannot create a socket for NOTIFY_SOCKET: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void notify__on_watchdog(void *arg)
{
	struct notify *n = arg;

	notify_send(n, "WATCHDOG=1");
	loop_timer_arm(n->loop, &n->watchdog_timer, n->watchdog_ms);
}

void notify_init(struct notify *n, struct loop *loop)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	uint64_t usec = 0;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	n->loop = loop;
	loop_timer_init(&n->watchdog_timer, notify__on_watchdog, n);
	if (!sock || !*sock)
		return;
	if (notify__open(n, sock) != 0)
		return;
#ifdef HAVE_LIBSYSTEMD
	{
		int r = sd_watchdog_enabled(0, &usec);

		if (r < 0) {
			log_warn("notify: ignoring a malformed WATCHDOG_USEC or WATCHDOG_PID: %s",
			         strerror(-r));
			usec = 0;
		} else if (r == 0) {
			usec = 0;
		}
	}
#else
	usec = notify__watchdog_usec();
#endif
	n->enabled = true;
	if (usec > 0) {
		/* Half the timeout, as sd_watchdog_enabled(3) advises; at least 1 ms. */
		n->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
		log_debug("notify: watchdog every %llu ms", (unsigned long long)n->watchdog_ms);
	}
	log_debug("notify: notifying %s", sock);
}

void notify_fini(struct notify *n)
{
	if (n->loop)
		loop_timer_disarm(n->loop, &n->watchdog_timer);
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	n->enabled = false;
}

int notify_send(struct notify *n, const char *msg)
{
	if (!n->enabled)
		return 0;
	if (sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
	           (const struct sockaddr *)&n->addr, n->addrlen) < 0) {
		log_debug("notify: sending '%s' failed: %s", msg, strerror(errno));
		return -1;
	}
	return 1;
}

void notify_ready(struct notify *n)
{
	notify_send(n, "READY=1");
	if (n->watchdog_ms > 0)
		notify__on_watchdog(n);
}

void notify_status(struct notify *n, const char *fmt, ...)
{
	char msg[sizeof("STATUS=") + NOTIFY_STATUS_MAX];
	char status[NOTIFY_STATUS_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	/* A newline would start a new assignment in the datagram. */
	for (char *p = status; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (strcmp(status, n->status) == 0)
		return;
	memcpy(n->status, status, sizeof(status));
	log_debug("notify: status: %s", status);
	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	notify_send(n, msg);
}

void notify_stopping(struct notify *n, const char *status)
{
	char msg[sizeof("STOPPING=1\nSTATUS=") + NOTIFY_STATUS_MAX];

	snprintf(n->status, sizeof(n->status), "%s", status);
	for (char *p = n->status; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=%s", n->status);
	notify_send(n, msg);
}

bool notify_watchdog(const struct notify *n, uint64_t *interval_ms)
{
	if (n->watchdog_ms == 0)
		return false;
	if (interval_ms)
		*interval_ms = n->watchdog_ms;
	return true;
}
