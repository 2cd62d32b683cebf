/*
 * udp_batch.node: a UDP socket for StunServer (packages/relay/src/native-udp.ts) that receives
 * with recvmmsg and sends with sendmmsg, so one event-loop wakeup and one JS call carry up to
 * BATCH datagrams instead of one each. node:dgram makes one syscall and one JS callback per
 * datagram each way, and that per-datagram cost is what capped the STUN service (bench:stun).
 *
 * Only I/O is here; what to answer stays in TypeScript. The socket is watched with libuv's
 * uv_poll on Node's own loop. JS hands in four buffers it owns:
 *   recv:      BATCH slots of SLOT bytes; datagram i lands at i * SLOT
 *   recvTable: per datagram, RECV_ENTRY bytes: u32 length, u16 port (host order), u8 kind
 *              (4 = IPv4, 6 = IPv6, 46 = IPv4-mapped IPv6), u8 flags (1 = truncated),
 *              u32 IPv4 address (network order, for kinds 4 and 46)
 *   send:      response bytes, anywhere
 *   sendTable: per response, SEND_ENTRY bytes: u32 offset into send, u32 length, i32 the index
 *              of the received datagram (this batch) whose source it goes back to
 * and a callback called with the number of datagrams in recv (a batch), or -errno once when a
 * receive fails. The buffers are read only inside that callback and sendBatch.
 *
 * Linux only (recvmmsg/sendmmsg). Node-API only, no C++: built by scripts/build.mjs with gcc.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#ifndef NODE_GYP_MODULE_NAME
#define NODE_GYP_MODULE_NAME udp_batch
#endif
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 4096
#define RECV_ENTRY 12
#define SEND_ENTRY 12
/* Batches drained per wakeup before letting the loop run other work (timers, the HTTP side). */
#define MAX_BATCHES_PER_WAKEUP 16

typedef struct {
  int fd;
  int family; /* AF_INET or AF_INET6, as bound */
  int closed;         /* close() ran: fd closed, poll stopping */
  int handle_closed;  /* libuv's close callback ran: the poll handle's memory is free to go */
  int finalized;      /* the JS handle was collected: free on handle_closed */
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref buffers[4];
  napi_async_context async;
  uint8_t *recv, *recv_table, *send, *send_table;
  size_t send_len;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage from[BATCH];
  struct mmsghdr out[BATCH];
  struct iovec out_iov[BATCH];
} udp_t;

static void throw_errno(napi_env env, const char *syscall, int err, const char *detail) {
  char msg[256];
  const char *name = uv_err_name(-err);
  snprintf(msg, sizeof msg, "%s %s%s%s", syscall, name, detail ? " " : "", detail ? detail : "");
  napi_value message, error, code, errnum, sys;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &error);
  napi_set_named_property(env, error, "code", code);
  napi_create_int32(env, -err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "syscall", sys);
  napi_throw(env, error);
}

static void throw_type(napi_env env, const char *msg) { napi_throw_type_error(env, NULL, msg); }

static udp_t *get_udp(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    throw_type(env, "not a udp_batch handle");
    return NULL;
  }
  return p;
}

/* A method's arguments, the first of them a handle: the handle's udp_t, or NULL (thrown). */
static udp_t *handle_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < n) {
    throw_type(env, "too few arguments");
    return NULL;
  }
  return get_udp(env, argv[0]);
}

static int get_buffer(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool ok = false;
  napi_is_buffer(env, v, &ok);
  if (!ok || napi_get_buffer_info(env, v, (void **)data, len) != napi_ok) return 0;
  return 1;
}

static napi_value make_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* The address as Node's RemoteInfo spells it: inet_ntop, with %interface for a scoped IPv6. */
static void address_text(const struct sockaddr_storage *ss, char *out, size_t n, int *port) {
  out[0] = 0;
  *port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)ss;
    inet_ntop(AF_INET, &a->sin_addr, out, n);
    *port = ntohs(a->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, out, n);
    *port = ntohs(a->sin6_port);
    if (a->sin6_scope_id) {
      char ifname[IF_NAMESIZE];
      size_t len = strlen(out);
      if (if_indextoname(a->sin6_scope_id, ifname)) snprintf(out + len, n - len, "%%%s", ifname);
      else snprintf(out + len, n - len, "%%%u", a->sin6_scope_id);
    }
  }
}

/* A numeric address (IPv4, IPv6, IPv6%scope) and port -> sockaddr for this socket's family (0, or -errno). */
static int parse_address(const char *host, int port, int family, struct sockaddr_storage *ss, socklen_t *len) {
  /* The relay sends each datagram through here: a plain literal is parsed without getaddrinfo's
     allocation; a scoped IPv6 address (fe80::1%eth0) takes the general route below. */
  struct in_addr v4;
  struct in6_addr v6;
  memset(ss, 0, sizeof *ss);
  if (inet_pton(AF_INET, host, &v4) == 1) {
    if (family == AF_INET) {
      struct sockaddr_in *a = (void *)ss;
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      a->sin_addr = v4;
      *len = sizeof *a;
    } else { /* an IPv4 destination from a dual-stack socket: its mapped form */
      struct sockaddr_in6 *a = (void *)ss;
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      a->sin6_addr.s6_addr[10] = 0xff;
      a->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
      *len = sizeof *a;
    }
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6) == 1) {
    if (family != AF_INET6) return -EAFNOSUPPORT;
    struct sockaddr_in6 *a = (void *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = v6;
    *len = sizeof *a;
    return 0;
  }
  /* What is left is an IPv6 literal with a scope (fe80::1%eth0), or not an address. */
  if (family != AF_INET6) return -EINVAL;
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_family = AF_INET6;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -EINVAL;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
  freeaddrinfo(res);
  return 0;
}

static void on_handle_closed(uv_handle_t *h) {
  udp_t *u = h->data;
  u->handle_closed = 1;
  if (u->finalized) free(u);
}

/* Stops watching, closes the fd, lets go of the JS objects. Idempotent. */
static void shutdown_udp(udp_t *u, int release_refs) {
  if (u->closed) return;
  u->closed = 1;
  uv_poll_stop(&u->poll);
  uv_close((uv_handle_t *)&u->poll, on_handle_closed);
  close(u->fd);
  u->fd = -1;
  if (release_refs) {
    napi_delete_reference(u->env, u->callback);
    for (int i = 0; i < 4; i++) napi_delete_reference(u->env, u->buffers[i]);
    napi_async_destroy(u->env, u->async);
  }
}

static void on_env_exit(void *arg) { shutdown_udp(arg, 0); }

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  udp_t *u = data;
  napi_remove_env_cleanup_hook(env, on_env_exit, u);
  shutdown_udp(u, 0);
  u->finalized = 1;
  if (u->handle_closed) free(u);
}

/* Calls the JS callback with `n` (a batch count or -errno); an exception becomes an uncaught one. */
static void deliver(udp_t *u, int n) {
  napi_env env = u->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, arg, result;
  napi_get_reference_value(env, u->callback, &cb);
  napi_get_global(env, &recv); /* make_callback wants an object */
  napi_create_int32(env, n, &arg);
  napi_status st = napi_make_callback(env, u->async, recv, cb, 1, &arg, &result);
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  udp_t *u = h->data;
  if (u->closed) return;
  if (status < 0) {
    deliver(u, status);
    return;
  }
  for (int b = 0; b < MAX_BATCHES_PER_WAKEUP && !u->closed; b++) {
    for (int i = 0; i < BATCH; i++) {
      u->iov[i].iov_base = u->recv + (size_t)i * SLOT;
      u->iov[i].iov_len = SLOT;
      memset(&u->msgs[i].msg_hdr, 0, sizeof u->msgs[i].msg_hdr);
      u->msgs[i].msg_hdr.msg_iov = &u->iov[i];
      u->msgs[i].msg_hdr.msg_iovlen = 1;
      u->msgs[i].msg_hdr.msg_name = &u->from[i];
      u->msgs[i].msg_hdr.msg_namelen = sizeof u->from[i];
    }
    int n = recvmmsg(u->fd, u->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) deliver(u, -errno);
      return;
    }
    if (n == 0) return;
    for (int i = 0; i < n; i++) {
      uint8_t *e = u->recv_table + (size_t)i * RECV_ENTRY;
      uint32_t len = u->msgs[i].msg_len;
      uint16_t port = 0;
      uint8_t kind = 0, flags = (u->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
      uint8_t v4[4] = {0};
      if (u->from[i].ss_family == AF_INET) {
        struct sockaddr_in *a = (void *)&u->from[i];
        kind = 4;
        port = ntohs(a->sin_port);
        memcpy(v4, &a->sin_addr, 4);
      } else if (u->from[i].ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (void *)&u->from[i];
        port = ntohs(a->sin6_port);
        kind = IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) ? 46 : 6;
        if (kind == 46) memcpy(v4, &a->sin6_addr.s6_addr[12], 4);
      }
      memcpy(e, &len, 4);
      memcpy(e + 4, &port, 2);
      e[6] = kind;
      e[7] = flags;
      memcpy(e + 8, v4, 4);
    }
    deliver(u, n);
    if (n < BATCH) return; /* drained */
  }
}

/* open(host, port, v6only, reusePort, rcvbuf, sndbuf, recv, recvTable, send, sendTable, onBatch) -> handle */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 11) return throw_type(env, "open: 11 arguments"), NULL;
  char host[128];
  size_t hostlen;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hostlen) != napi_ok) return throw_type(env, "open: host"), NULL;
  int32_t port, rcvbuf, sndbuf;
  bool v6only, reuse;
  napi_get_value_int32(env, argv[1], &port);
  napi_get_value_bool(env, argv[2], &v6only);
  napi_get_value_bool(env, argv[3], &reuse);
  napi_get_value_int32(env, argv[4], &rcvbuf);
  napi_get_value_int32(env, argv[5], &sndbuf);
  uint8_t *bufs[4];
  size_t lens[4];
  for (int i = 0; i < 4; i++)
    if (!get_buffer(env, argv[6 + i], &bufs[i], &lens[i])) return throw_type(env, "open: buffers"), NULL;
  if (lens[0] < (size_t)BATCH * SLOT || lens[1] < (size_t)BATCH * RECV_ENTRY || lens[3] < (size_t)BATCH * SEND_ENTRY) return throw_type(env, "open: buffers too small"), NULL;
  napi_valuetype t;
  napi_typeof(env, argv[10], &t);
  if (t != napi_function) return throw_type(env, "open: callback"), NULL;

  int family = strchr(host, ':') ? AF_INET6 : AF_INET;
  struct sockaddr_storage ss;
  socklen_t sslen;
  char detail[160];
  snprintf(detail, sizeof detail, "%s:%d", host, port);
  int rc = parse_address(host, port, family, &ss, &sslen);
  if (rc < 0) return throw_errno(env, "bind", rc, detail), NULL;
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno, NULL), NULL;
  int one = 1, zero = 0;
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &zero, sizeof one);
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt", e, "SO_REUSEPORT"), NULL;
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e, detail), NULL;
  }
  /* The kernel caps both at net.core.{r,w}mem_max: a refusal keeps the defaults. */
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  udp_t *u = calloc(1, sizeof *u);
  if (!u) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM, NULL), NULL;
  }
  u->fd = fd;
  u->family = family;
  u->env = env;
  u->recv = bufs[0];
  u->recv_table = bufs[1];
  u->send = bufs[2];
  u->send_len = lens[2];
  u->send_table = bufs[3];
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &u->poll, fd) != 0) {
    close(fd);
    free(u);
    return throw_errno(env, "uv_poll_init", EINVAL, NULL), NULL;
  }
  u->poll.data = u;
  napi_create_reference(env, argv[10], 1, &u->callback);
  for (int i = 0; i < 4; i++) napi_create_reference(env, argv[6 + i], 1, &u->buffers[i]);
  napi_async_init(env, NULL, make_string(env, "WeftUdpBatch"), &u->async);
  uv_poll_start(&u->poll, UV_READABLE, on_readable);
  napi_add_env_cleanup_hook(env, on_env_exit, u);
  napi_value handle;
  napi_create_external(env, u, finalize, NULL, &handle);
  return handle;
}

/* address(handle) -> [address, port, family 4|6] of the bound socket. */
static napi_value js_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  udp_t *u = handle_args(env, info, 1, argv);
  if (!u) return NULL;
  if (u->closed) return throw_errno(env, "getsockname", EBADF, NULL), NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(u->fd, (struct sockaddr *)&ss, &len) < 0) return throw_errno(env, "getsockname", errno, NULL), NULL;
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  int port;
  address_text(&ss, text, sizeof text, &port);
  napi_value arr, v;
  napi_create_array_with_length(env, 3, &arr);
  napi_set_element(env, arr, 0, make_string(env, text));
  napi_create_int32(env, port, &v);
  napi_set_element(env, arr, 1, v);
  napi_create_int32(env, ss.ss_family == AF_INET6 ? 6 : 4, &v);
  napi_set_element(env, arr, 2, v);
  return arr;
}

/* peer(handle, i) -> the source address of datagram i of the current batch, as RemoteInfo spells it. */
static napi_value js_peer(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  udp_t *u = handle_args(env, info, 2, argv);
  if (!u) return NULL;
  int32_t i = -1;
  napi_get_value_int32(env, argv[1], &i);
  if (i < 0 || i >= BATCH) return throw_type(env, "peer: index"), NULL;
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  int port;
  address_text(&u->from[i], text, sizeof text, &port);
  return make_string(env, text);
}

/*
 * sendBatch(handle, n): sends the first n entries of sendTable with one sendmmsg (more when the
 * kernel takes part of them). Returns how many went. A datagram the kernel refuses (a bad
 * destination) is skipped; a full send buffer drops the rest, as it would drop any datagram.
 */
static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  udp_t *u = handle_args(env, info, 2, argv);
  if (!u) return NULL;
  int32_t n = 0;
  napi_get_value_int32(env, argv[1], &n);
  if (n < 0 || n > BATCH) return throw_type(env, "sendBatch: count"), NULL;
  int ready = 0;
  for (int i = 0; i < n && !u->closed; i++) {
    uint8_t *e = u->send_table + (size_t)i * SEND_ENTRY;
    uint32_t off, len;
    int32_t to;
    memcpy(&off, e, 4);
    memcpy(&len, e + 4, 4);
    memcpy(&to, e + 8, 4);
    if (to < 0 || to >= BATCH || (size_t)off + len > u->send_len) continue;
    struct mmsghdr *m = &u->out[ready];
    memset(&m->msg_hdr, 0, sizeof m->msg_hdr);
    u->out_iov[ready].iov_base = u->send + off;
    u->out_iov[ready].iov_len = len;
    m->msg_hdr.msg_iov = &u->out_iov[ready];
    m->msg_hdr.msg_iovlen = 1;
    m->msg_hdr.msg_name = &u->from[to];
    m->msg_hdr.msg_namelen = u->from[to].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    ready++;
  }
  int sent = 0, at = 0, tries = 0;
  while (at < ready && tries++ < 2 * BATCH) {
    int r = sendmmsg(u->fd, u->out + at, ready - at, 0);
    if (r > 0) {
      at += r;
      sent += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      break;
    } else {
      at++; /* this one was refused: the next may go */
    }
  }
  napi_create_int32(env, sent, &out);
  return out;
}

/* sendTo(handle, buffer, port, address) -> 0, or -errno (never throws for a bad destination). */
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  napi_value argv[4], out;
  udp_t *u = handle_args(env, info, 4, argv);
  if (!u) return NULL;
  uint8_t *data;
  size_t len;
  if (!get_buffer(env, argv[1], &data, &len)) return throw_type(env, "sendTo: buffer"), NULL;
  int32_t port = 0;
  napi_get_value_int32(env, argv[2], &port);
  char host[128];
  size_t hostlen = 0;
  int rc = 0;
  if (u->closed) rc = -EBADF;
  else if (napi_get_value_string_utf8(env, argv[3], host, sizeof host, &hostlen) != napi_ok || port <= 0 || port > 65535) rc = -EINVAL;
  if (rc == 0) {
    struct sockaddr_storage ss;
    socklen_t sslen;
    rc = parse_address(host, port, u->family, &ss, &sslen);
    if (rc == 0 && sendto(u->fd, data, len, 0, (struct sockaddr *)&ss, sslen) < 0) rc = -errno;
  }
  napi_create_int32(env, rc, &out);
  return out;
}

/* close(handle): stops the poll, closes the fd. Idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  udp_t *u = handle_args(env, info, 1, argv);
  if (!u) return NULL;
  shutdown_udp(u, 1);
  return NULL;
}

/*
 * raiseSocketBuffers(pid, fd, bytes) -> the socket's receive buffer now (bytes, as the kernel
 * reports it: twice what was asked), or -errno. Another process's socket: the agent's wireguard-go,
 * which (Debian's 0.0.20220316) keeps the kernel's default 208 KiB, where wireguard-go since 2023
 * asks for 7 MiB itself. pidfd_getfd (Linux 5.6) gives this process a second descriptor for the
 * same socket, so the options set on it are the socket's; the duplicate is closed at once. Needs
 * PTRACE_MODE_ATTACH on the target and CAP_NET_ADMIN for the FORCE options (root has both); without
 * CAP_NET_ADMIN the plain options apply, capped at net.core.{r,w}mem_max.
 */
static napi_value js_raise_socket_buffers(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t pid = 0, fd = -1, bytes = 0;
  if (argc != 3 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || napi_get_value_int32(env, argv[1], &fd) != napi_ok ||
      napi_get_value_int32(env, argv[2], &bytes) != napi_ok || pid <= 0 || fd < 0 || bytes <= 0)
    return throw_type(env, "raiseSocketBuffers(pid, fd, bytes): positive integers"), NULL;
  int rc = 0;
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) rc = -errno;
  int dup = -1;
  if (rc == 0) {
    dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    if (dup < 0) rc = -errno;
    close(pidfd);
  }
  if (rc == 0) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(dup, SOL_SOCKET, SO_TYPE, &type, &len) < 0) rc = -errno;
    else if (type != SOCK_DGRAM) rc = -ENOTSOCK; /* not what the caller meant: leave it alone */
  }
  if (rc == 0) {
    if (setsockopt(dup, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0) setsockopt(dup, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    if (setsockopt(dup, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) < 0) setsockopt(dup, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    int now = 0;
    socklen_t len = sizeof now;
    rc = getsockopt(dup, SOL_SOCKET, SO_RCVBUF, &now, &len) < 0 ? -errno : now;
  }
  if (dup >= 0) close(dup);
  napi_create_int32(env, rc, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  const struct { const char *name; napi_callback fn; } fns[] = {
    {"open", js_open}, {"address", js_address}, {"peer", js_peer}, {"sendBatch", js_send_batch}, {"sendTo", js_send_to}, {"close", js_close},
    {"raiseSocketBuffers", js_raise_socket_buffers},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  napi_value v;
#define CONST(name) (napi_create_int32(env, name, &v), napi_set_named_property(env, exports, #name, v))
  CONST(BATCH);
  CONST(SLOT);
  CONST(RECV_ENTRY);
  CONST(SEND_ENTRY);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
