#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How often a name lookup in progress is asked for its answer. */
#define PROBE_LOOKUP_POLL_MS 10

static void probe_close(struct probe *p)
{
	if (p->fd >= 0) {
		loop_fd_del(p->loop, p->fd);
		close(p->fd);
	}
	p->fd = -1;
}

void probe_cancel(struct probe *p)
{
	probe_close(p);
	resolve_abandon(&p->resolve);
	p->addr = NULL;
	loop_timer_disarm(p->loop, &p->poll_timer);
	loop_timer_disarm(p->loop, &p->deadline_timer);
	p->running = false;
}

static void probe_end(struct probe *p, bool ok)
{
	probe_cancel(p);
	p->done(p->arg, ok, p->why);
}

static void probe_on_fd(void *arg, int fd, short revents);

/* Tries the addresses from p->addr on until one connects or starts to. */
static void probe_next(struct probe *p)
{
	for (; p->addr != NULL; p->addr = p->addr->ai_next) {
		const struct addrinfo *ai = p->addr;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                ai->ai_protocol);

		if (fd < 0) {
			snprintf(p->why, sizeof(p->why), "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			close(fd);
			probe_end(p, true);
			return;
		}
		if (errno != EINPROGRESS) {
			snprintf(p->why, sizeof(p->why), "%s", strerror(errno));
			close(fd);
			continue;
		}
		if (loop_fd_add(p->loop, fd, POLLOUT, probe_on_fd, p) != 0) {
			snprintf(p->why, sizeof(p->why), "too many file descriptors in the event loop");
			close(fd);
			probe_end(p, false);
			return;
		}
		p->fd = fd;
		return;
	}
	probe_end(p, false);
}

static void probe_on_fd(void *arg, int fd, short revents)
{
	struct probe *p = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)revents;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		probe_end(p, true);
		return;
	}
	snprintf(p->why, sizeof(p->why), "%s", strerror(err));
	probe_close(p);
	p->addr = p->addr->ai_next;
	probe_next(p);
}

static void probe_on_lookup(void *arg)
{
	struct probe *p = arg;
	struct addrinfo *list;
	int rc = resolve_poll(&p->resolve, &list, p->why, sizeof(p->why));

	if (rc == 0) {
		loop_timer_arm(p->loop, &p->poll_timer, PROBE_LOOKUP_POLL_MS);
		return;
	}
	if (rc < 0) {
		probe_end(p, false);
		return;
	}
	snprintf(p->why, sizeof(p->why), "no address");
	p->addr = list;
	probe_next(p);
}

static void probe_on_deadline(void *arg)
{
	struct probe *p = arg;

	if (p->fd >= 0)
		snprintf(p->why, sizeof(p->why), "no answer to the TCP connect in time");
	else if (p->why[0] == '\0')
		snprintf(p->why, sizeof(p->why), "no address for the name in time");
	probe_end(p, false);
}

void probe_init(struct probe *p, struct loop *loop, probe_done_fn done, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->done = done;
	p->arg = arg;
	p->fd = -1;
	resolve_init(&p->resolve);
	loop_timer_init(&p->poll_timer, probe_on_lookup, p);
	loop_timer_init(&p->deadline_timer, probe_on_deadline, p);
}


void probe_fini(struct probe *p)
{
	probe_cancel(p);
	resolve_fini(&p->resolve);
}

void probe_start(struct probe *p, const char *host, int port, unsigned timeout_ms)
{
	probe_cancel(p);
	p->running = true;
	p->why[0] = '\0';
	loop_timer_arm(p->loop, &p->deadline_timer, timeout_ms);
	if (resolve_start(&p->resolve, host, port, p->why, sizeof(p->why)) != 0) {
		/* Answered from the loop, as every outcome. */
		loop_timer_disarm(p->loop, &p->deadline_timer);
		loop_timer_arm(p->loop, &p->deadline_timer, 0);
		return;
	}
	/* The first answer is asked for from the loop too (a numeric host has it already). */
	loop_timer_arm(p->loop, &p->poll_timer, 0);
}
