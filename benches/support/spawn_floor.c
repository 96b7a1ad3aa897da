/* The floor under an exec, measured inside a sprite: what the agent does for one
 * command (three pipes, posix_spawn of /bin/true in a process group of its own, read
 * its output to the end, wait for it), without the agent. Prints each run's wall time
 * in microseconds, one per line. Built static by benches/support/floor.rs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static void drain(int fd) {
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

static int spawn_true(void) {
    int in[2], out[2], err[2], status;
    pid_t pid;
    char *argv[] = {"true", NULL};
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawn_file_actions_addchdir_np(&actions, "/");
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int failed = posix_spawnp(&pid, "true", &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    close(in[1]);
    if (failed) return -1;
    drain(out[0]);
    drain(err[0]);
    return waitpid(pid, &status, 0) == pid ? 0 : -1;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 50;
    for (int i = 0; i < runs; i++) {
        long long start = now_us();
        if (spawn_true()) {
            perror("spawn");
            return 1;
        }
        printf("%lld\n", now_us() - start);
    }
    return 0;
}
