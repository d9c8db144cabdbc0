/*
 * loop: the daemon's single event loop.  poll(2) over a handful of file
 * descriptors, one-shot timers on the monotonic clock, and signals read
 * through a signalfd so that handlers never run asynchronously.
 *
 * Nothing here allocates after loop_init(): fds live in a small fixed table
 * and timers are intrusive structs owned by their modules.
 */
#ifndef BRIDGE_LOOP_H
#define BRIDGE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define LOOP_MAX_FDS 12

struct loop;

typedef void (*loop_fd_fn)(void *arg, int fd, short revents);
typedef void (*loop_timer_fn)(void *arg);
typedef void (*loop_signal_fn)(void *arg, int signo);
/* Runs before every poll(); returns true when work is pending and poll must not sleep. */
typedef bool (*loop_prepare_fn)(void *arg);

struct loop_timer {
	uint64_t due_ms;
	bool armed;
	loop_timer_fn fn;
	void *arg;
	struct loop_timer *next;
};

struct loop_fd {
	int fd;
	short events;
	loop_fd_fn fn;
	void *arg;
};

struct loop {
	struct loop_fd fds[LOOP_MAX_FDS];
	int nfds;
	struct loop_timer *timers;   /* armed timers, sorted by due time */
	int sigfd;
	loop_signal_fn sig_fn;
	void *sig_arg;
	loop_prepare_fn prepare_fn;
	void *prepare_arg;
	bool stop;
};

/* Milliseconds on the monotonic clock. */
uint64_t loop_now_ms(void);

/*
 * Microseconds on the monotonic clock as the loop last read it: before
 * the prepare step and after each poll().  Reading it costs no system
 * call, which is what the forwarding path's timings need.
 */
uint64_t loop_time_us(void);

/*
 * Blocks the given signals (0-terminated list) and routes them through a
 * signalfd to `fn`.  Returns 0, or -1 with errno set.
 */
int loop_init(struct loop *l, const int *signals, loop_signal_fn fn, void *arg);
void loop_fini(struct loop *l);

void loop_set_prepare(struct loop *l, loop_prepare_fn fn, void *arg);

/* Registers `fd`; returns 0, or -1 when the table is full. */
int loop_fd_add(struct loop *l, int fd, short events, loop_fd_fn fn, void *arg);
/* Changes the poll events of a registered fd (0 keeps it registered but idle). */
void loop_fd_events(struct loop *l, int fd, short events);
void loop_fd_del(struct loop *l, int fd);

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *arg);
/* (Re)arms `t` to fire once, `delay_ms` from now. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms);
void loop_timer_disarm(struct loop *l, struct loop_timer *t);

/* One iteration: prepare, poll (sleeping at most until the next timer), dispatch. */
void loop_run_once(struct loop *l);

#endif
