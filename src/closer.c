#include "closer.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

void closer_end(struct closer *l)
{
	if (l->fd < 0)
		return;
	loop_fd_del(l->loop, l->fd);
	loop_timer_disarm(l->loop, &l->timer);
	close(l->fd);
	l->fd = -1;
}

static void closer_on_fd(void *arg, int fd, short revents)
{
	struct closer *l = arg;
	char buf[16384];
	ssize_t n;

	(void)revents;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		closer_end(l);
}

static void closer_on_timeout(void *arg)
{
	struct closer *l = arg;

	log_debug("%s: the peer did not close the connection within %u ms", l->who, l->ms);
	closer_end(l);
}

void closer_init(struct closer *l, struct loop *loop, unsigned ms, const char *who)
{
	l->loop = loop;
	l->fd = -1;
	l->ms = ms;
	l->who = who;
	loop_timer_init(&l->timer, closer_on_timeout, l);
}

void closer_begin(struct closer *l, int fd)
{
	closer_end(l);
	l->fd = fd;
	shutdown(fd, SHUT_WR);
	if (loop_fd_add(l->loop, fd, POLLIN, closer_on_fd, l) != 0) {
		closer_end(l);
		return;
	}
	loop_timer_arm(l->loop, &l->timer, l->ms);
}
