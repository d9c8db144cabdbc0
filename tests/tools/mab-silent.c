/*
 * mab-silent: a TCP peer that accepts connections and never says a word.
 *
 *   mab-silent -p PORT [-t SECONDS]
 *
 * Listens on 127.0.0.1:PORT, accepts every connection, reads and discards
 * what arrives, and prints one line on stdout per event:
 *
 *   listening PORT
 *   accepted N          (connection N, counting from 1)
 *   received N BYTES    (BYTES in all so far on connection N)
 *   closed N            (the client closed connection N)
 *
 * Exits 0 after SECONDS (default 300) or on SIGTERM/SIGINT; 1 on errors,
 * 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "toolutil.h"

#define MAX_CONNS 16

static volatile sig_atomic_t stop;

static void on_signal(int signo)
{
	(void)signo;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct pollfd pfd[MAX_CONNS + 1];
	long long port = 0, seconds = 300;
	long long total[MAX_CONNS + 1] = { 0 };
	int id[MAX_CONNS + 1] = { 0 };
	struct sockaddr_in addr;
	struct sigaction sa;
	int opt, lfd, n = 1, accepted = 0, one = 1;
	double deadline;

	while ((opt = getopt(argc, argv, "p:t:")) != -1) {
		switch (opt) {
		case 'p':
			if (tool_parse_ll("mab-silent", optarg, 1, 65535, "-p", &port) != 0)
				return 2;
			break;
		case 't':
			if (tool_parse_ll("mab-silent", optarg, 1, 86400, "-t", &seconds) != 0)
				return 2;
			break;
		default:
			fprintf(stderr, "Usage: mab-silent -p PORT [-t SECONDS]\n");
			return 2;
		}
	}
	if (port == 0 || optind < argc) {
		fprintf(stderr, "Usage: mab-silent -p PORT [-t SECONDS]\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		perror("mab-silent: socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 16) != 0) {
		fprintf(stderr, "mab-silent: port %lld: %s\n", port, strerror(errno));
		return 1;
	}
	printf("listening %lld\n", port);
	fflush(stdout);
	pfd[0].fd = lfd;
	pfd[0].events = POLLIN;

	deadline = tool_now_s() + (double)seconds;
	while (!stop) {
		double left = deadline - tool_now_s();
		int r;

		if (left <= 0)
			break;
		r = poll(pfd, (nfds_t)n, (int)(left * 1000) + 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("mab-silent: poll");
			return 1;
		}
		if ((pfd[0].revents & POLLIN) && n <= MAX_CONNS) {
			int c = accept(lfd, NULL, NULL);

			if (c >= 0) {
				pfd[n].fd = c;
				pfd[n].events = POLLIN;
				pfd[n].revents = 0;
				id[n] = ++accepted;
				total[n] = 0;
				n++;
				printf("accepted %d\n", accepted);
				fflush(stdout);
			}
		}
		for (int i = 1; i < n; i++) {
			char buf[4096];
			ssize_t got;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = read(pfd[i].fd, buf, sizeof(buf));
			if (got > 0) {
				total[i] += got;
				printf("received %d %lld\n", id[i], total[i]);
			} else if (got == 0 || errno != EINTR) {
				printf("closed %d\n", id[i]);
				close(pfd[i].fd);
				pfd[i] = pfd[n - 1];
				id[i] = id[n - 1];
				total[i] = total[n - 1];
				n--;
				i--;
			}
			fflush(stdout);
		}
	}
	return 0;
}
