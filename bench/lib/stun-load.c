/*
 * bench:stun's load generator: STUN Binding requests at a UDP server as fast as it answers them.
 * bench/lib/stun-load.ts compiles it with gcc into a temp dir and runs it; one process, one
 * thread, so whatever CPU it reports is the most it took from the server's cores.
 *
 *   stun-load HOST PORT SOCKETS WINDOW DURATION_MS TIMEOUT_MS
 *
 * SOCKETS sockets, each connected to the server, each keeping WINDOW requests outstanding: a
 * response (or TIMEOUT_MS without one, counted lost) frees a slot, which sends the next request.
 * Requests are the 20-byte header (no attributes); the transaction ID's last 4 bytes carry a
 * sequence number, so a response finds its slot without a map (seq % WINDOW). Responses are read
 * with recvmmsg and the requests they free go back out with one sendmmsg per socket and wakeup,
 * so the generator's syscalls per datagram are few. The first response on each socket is decoded
 * in full: its XOR-MAPPED-ADDRESS must be that socket's own address and port (`verified`).
 *
 * Prints one JSON line: sent, received, lost, seconds, responsesPerSecond, verified,
 * generatorCpuSeconds (user + system of this process).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define REQ_LEN 20
#define RESP_MAX 512
#define MAGIC 0x2112A442u

typedef struct {
  int fd;
  uint32_t *seq;    /* per slot: the sequence number outstanding */
  double *sent_at;  /* per slot: when it went, ms */
  int checked;
  struct sockaddr_in self;
} sock_t;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int window;
static long sent, received, lost;
static int verified = 1;

/* Requests waiting to go out on one socket, sent with one sendmmsg. */
static uint8_t out_buf[BATCH * 4][REQ_LEN];
static struct mmsghdr out_msgs[BATCH * 4];
static struct iovec out_iov[BATCH * 4];
static int out_n;

static void queue(sock_t *s, int slot, uint32_t seq, double now) {
  uint8_t *r = out_buf[out_n];
  memset(r, 0, REQ_LEN);
  r[1] = 0x01; /* Binding request, length 0 */
  uint32_t cookie = htonl(MAGIC), nseq = htonl(seq);
  memcpy(r + 4, &cookie, 4);
  memcpy(r + 8, &s->fd, sizeof s->fd); /* some variety in the transaction ID */
  memcpy(r + 16, &nseq, 4);
  s->seq[slot] = seq;
  s->sent_at[slot] = now;
  out_iov[out_n].iov_base = r;
  out_iov[out_n].iov_len = REQ_LEN;
  memset(&out_msgs[out_n].msg_hdr, 0, sizeof out_msgs[out_n].msg_hdr);
  out_msgs[out_n].msg_hdr.msg_iov = &out_iov[out_n];
  out_msgs[out_n].msg_hdr.msg_iovlen = 1;
  out_n++;
}

static void flush(sock_t *s) {
  int at = 0;
  while (at < out_n) {
    int r = sendmmsg(s->fd, out_msgs + at, out_n - at, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break; /* full buffer or refused: the slots time out and resend */
    }
    at += r;
  }
  sent += at;
  out_n = 0;
}

/* XOR-MAPPED-ADDRESS of a success response is this socket's own address. */
static int check_mapped(const sock_t *s, const uint8_t *m, int n) {
  if (n < 20) return 0;
  int len = (m[2] << 8) | m[3];
  if (20 + len > n) return 0;
  for (int at = 20; at + 4 <= 20 + len;) {
    int type = (m[at] << 8) | m[at + 1], alen = (m[at + 2] << 8) | m[at + 3];
    if (at + 4 + alen > 20 + len) return 0;
    if (type == 0x0020 && alen == 8 && m[at + 5] == 1) {
      uint16_t port = (((m[at + 6] << 8) | m[at + 7]) ^ (MAGIC >> 16)) & 0xffff;
      uint32_t addr;
      memcpy(&addr, m + at + 8, 4);
      addr = ntohl(addr) ^ MAGIC;
      return port == ntohs(s->self.sin_port) && addr == ntohl(s->self.sin_addr.s_addr);
    }
    at += 4 + ((alen + 3) & ~3);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s HOST PORT SOCKETS WINDOW DURATION_MS TIMEOUT_MS\n", argv[0]);
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]), nsock = atoi(argv[3]), duration = atoi(argv[5]), timeout = atoi(argv[6]);
  window = atoi(argv[4]);
  if (nsock < 1 || window < 1 || window > BATCH * 4 || duration < 1 || timeout < 1) {
    fprintf(stderr, "stun-load: bad arguments\n");
    return 2;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    fprintf(stderr, "stun-load: %s is not an IPv4 address\n", host);
    return 2;
  }
  int ep = epoll_create1(0);
  sock_t *socks = calloc(nsock, sizeof *socks);
  for (int i = 0; i < nsock; i++) {
    sock_t *s = &socks[i];
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int buf = 4 << 20;
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr = to.sin_addr};
    socklen_t len = sizeof s->self;
    if (bind(s->fd, (void *)&any, sizeof any) < 0 || connect(s->fd, (void *)&to, sizeof to) < 0 || getsockname(s->fd, (void *)&s->self, &len) < 0) {
      perror("stun-load: socket");
      return 1;
    }
    s->seq = calloc(window, sizeof *s->seq);
    s->sent_at = calloc(window, sizeof *s->sent_at);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
  }

  static uint8_t in_buf[BATCH][RESP_MAX];
  static struct mmsghdr in_msgs[BATCH];
  static struct iovec in_iov[BATCH];
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  double t0 = now_ms(), end = t0 + duration, last_sweep = t0;
  for (int i = 0; i < nsock; i++) {
    for (int slot = 0; slot < window; slot++) queue(&socks[i], slot, slot, t0);
    flush(&socks[i]);
  }
  struct epoll_event evs[256];
  double now = t0;
  while ((now = now_ms()) < end) {
    int n = epoll_wait(ep, evs, 256, 5);
    now = now_ms();
    for (int e = 0; e < n; e++) {
      sock_t *s = evs[e].data.ptr;
      for (;;) {
        for (int i = 0; i < BATCH; i++) {
          in_iov[i].iov_base = in_buf[i];
          in_iov[i].iov_len = RESP_MAX;
          memset(&in_msgs[i].msg_hdr, 0, sizeof in_msgs[i].msg_hdr);
          in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
          in_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(s->fd, in_msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) break;
        for (int i = 0; i < got; i++) {
          const uint8_t *m = in_buf[i];
          int len = in_msgs[i].msg_len;
          if (len < 20 || m[0] != 0x01 || m[1] != 0x01) continue;
          uint32_t seq;
          memcpy(&seq, m + 16, 4);
          seq = ntohl(seq);
          int slot = seq % window;
          if (s->seq[slot] != seq) continue; /* late, after a timeout */
          if (!s->checked) {
            s->checked = 1;
            if (!check_mapped(s, m, len)) verified = 0;
          }
          received++;
          queue(s, slot, seq + window, now);
          if (out_n == BATCH * 4) flush(s);
        }
        flush(s);
        if (got < BATCH) break;
      }
    }
    if (now - last_sweep >= timeout / 4.0) {
      last_sweep = now;
      for (int i = 0; i < nsock; i++) {
        sock_t *s = &socks[i];
        for (int slot = 0; slot < window; slot++)
          if (now - s->sent_at[slot] > timeout) {
            lost++;
            queue(s, slot, s->seq[slot] + window, now);
            if (out_n == BATCH * 4) flush(s);
          }
        flush(s);
      }
    }
  }
  double seconds = (now_ms() - t0) / 1e3;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  for (int i = 0; i < nsock; i++) {
    if (!socks[i].checked) verified = 0; /* a socket that never got an answer proves nothing */
    close(socks[i].fd);
  }
  printf("{\"sent\":%ld,\"received\":%ld,\"lost\":%ld,\"seconds\":%.4f,\"responsesPerSecond\":%.1f,\"verified\":%s,\"generatorCpuSeconds\":%.4f}\n", sent, received, lost, seconds, received / seconds, verified ? "true" : "false", cpu);
  return 0;
}
