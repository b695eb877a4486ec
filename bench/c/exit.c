/* The floor of BENCHMARKS.md item 13: a program that exits at once, built static
 * (`cc -static -O2` by scripts/bench), which `roundtrips posix-spawn` starts. */
#include <unistd.h>

int main(void) { _exit(0); }
