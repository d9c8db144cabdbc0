/*
 * mab-notify: a stand-in for systemd's notification socket.
 *
 *   mab-notify -s PATH [-t SECONDS]
 *
 * Binds a Unix datagram socket at PATH (replacing a stale socket there) and
 * prints every datagram it receives as one line on stdout:
 *
 *   <seconds.milliseconds on CLOCK_MONOTONIC> <datagram>
 *
 * with each newline inside the datagram written as "\n", so that several
 * assignments sent together stay on one line.  Exits 0 after SECONDS
 * (default 60) or on SIGTERM/SIGINT, removing PATH; 1 on errors, 2 on
 * usage errors.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "toolutil.h"

static volatile sig_atomic_t stop;

static void on_signal(int signo)
{
	(void)signo;
	stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: mab-notify -s PATH [-t SECONDS]\n");
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr;
	struct sigaction sa;
	const char *path = NULL;
	char buf[4096];
	long seconds = 60;
	double deadline;
	char *end;
	int opt, fd;

	while ((opt = getopt(argc, argv, "s:t:h")) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 't':
			errno = 0;
			seconds = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || seconds < 1 || seconds > 86400) {
				fprintf(stderr, "mab-notify: -t wants 1..86400 seconds\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind < argc) {
		usage(stderr);
		return 2;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "mab-notify: path too long: %s\n", path);
		return 2;
	}
	strcpy(addr.sun_path, path);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal must interrupt poll(). */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("mab-notify: socket");
		return 1;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		fprintf(stderr, "mab-notify: bind %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}

	deadline = tool_now_s() + (double)seconds;
	while (!stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double left = deadline - tool_now_s();
		ssize_t n;
		int r;

		if (left <= 0)
			break;
		r = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("mab-notify: poll");
			break;
		}
		if (r == 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			perror("mab-notify: recv");
			break;
		}
		printf("%.3f ", tool_now_s());
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n')
				fputs("\\n", stdout);
			else
				putchar(buf[i]);
		}
		putchar('\n');
		fflush(stdout);
	}
	close(fd);
	unlink(path);
	return 0;
}
