/* The floor of BENCHMARKS.md item 12: the least a fork server can do per round trip.
 * `fork_server N`: a server process is forked once; then N times the program asks it over
 * a socket for a child, the server clones one with CLONE_PARENT that exits at once and
 * answers with its pid, and the program reaps it. No arguments, environment, descriptors
 * or setup travel: what is left is the kernel's fork, exit and wait and two socket hops.
 * Built static by scripts/bench (`cc -static -O2`). */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void serve(int socket) {
  char request;
  while (read(socket, &request, 1) == 1) {
    pid_t pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (write(socket, &pid, sizeof pid) != sizeof pid) _exit(1);
  }
  _exit(0);
}

int main(int argc, char **argv) {
  int count = argc == 2 ? atoi(argv[1]) : -1, pair[2];
  if (count < 0) {
    fprintf(stderr, "usage: fork_server COUNT\n");
    return 2;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
  pid_t server = fork();
  if (server < 0) return 1;
  if (server == 0) {
    close(pair[0]);
    serve(pair[1]);
  }
  close(pair[1]);
  for (int i = 0; i < count; i++) {
    pid_t child;
    int status;
    if (write(pair[0], "", 1) != 1 || read(pair[0], &child, sizeof child) != sizeof child ||
        child <= 0 || waitpid(child, &status, 0) != child || status != 0)
      return 1;
  }
  close(pair[0]);
  int status;
  return waitpid(server, &status, 0) == server && status == 0 ? 0 : 1;
}
