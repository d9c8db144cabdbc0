/*
 * payload: deterministic test messages.  A payload of `size` bytes is a
 * function of its sequence number (and of an optional send timestamp), so a
 * consumer can check every byte without knowing anything but the payload.
 *
 * Layout (little-endian):
 *   0..7    sequence number
 *   8..11   size in bytes; bit 31 set when bytes 16..23 hold a timestamp
 *   12..15  PAYLOAD_MAGIC
 *   16..    bytes derived from the sequence number: first a permutation of
 *           all 256 byte values (as much of it as fits), then a
 *           pseudo-random stream.  With a timestamp, bytes 16..23 carry it
 *           instead (nanoseconds since the Unix epoch, CLOCK_REALTIME).
 *
 * Topics are made from a printf-like pattern with one "%d" (or "%u"), which
 * receives seq modulo the topic count; "%%" is a literal '%'.
 */
#ifndef MAB_PAYLOAD_H
#define MAB_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define PAYLOAD_MIN 16
#define PAYLOAD_MIN_STAMPED 24
#define PAYLOAD_MAX (256u * 1024 * 1024)
#define PAYLOAD_MAGIC 0x3142414dU /* "MAB1" */

/* Fills buf[0..size) for `seq`.  Requires PAYLOAD_MIN <= size <= PAYLOAD_MAX. */
void payload_make(uint64_t seq, size_t size, unsigned char *buf);

/*
 * Stores a send timestamp in a payload made by payload_make().  Returns 0,
 * or -1 when size < PAYLOAD_MIN_STAMPED (the payload is left unchanged).
 */
int payload_stamp(unsigned char *buf, size_t size, uint64_t ns);

/*
 * Verifies a received payload.  Returns 0 and stores its sequence number in
 * *seq (and its timestamp in *stamp_ns, or 0 when unstamped; either pointer
 * may be NULL) when every byte is what payload_make() (and payload_stamp())
 * produce.  Returns -1 otherwise; *seq then holds the sequence number from
 * the header if there is one, else UINT64_MAX.
 */
int payload_check(const unsigned char *buf, size_t len, uint64_t *seq, uint64_t *stamp_ns);

/*
 * The size the test tools use for `seq`: `min` when min == max, otherwise a
 * value in [min, max] derived from seq; every `big_every`-th seq (when
 * non-zero) gets `big` bytes instead.
 */
size_t payload_size_for(uint64_t seq, size_t min, size_t max, uint64_t big_every, size_t big);

/*
 * Checks a topic pattern: at most one "%d" / "%u", other '%' only as "%%".
 * Returns 0 or -1.
 */
int payload_topic_check(const char *pattern);

/*
 * Writes the topic for `seq` (pattern with seq % ntopics) into out[outsz].
 * Returns its length, or -1 if it does not fit.
 */
int payload_topic(const char *pattern, uint64_t ntopics, uint64_t seq, char *out, size_t outsz);

/* The AMQP routing key for an MQTT topic: '/' becomes '.'.  In place. */
void payload_key(char *topic);

#endif
