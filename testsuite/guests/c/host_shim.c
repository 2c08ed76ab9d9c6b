/* The host side of rt.h: output with write(2), exit with _exit(2). */
#include "rt.h"
#include <unistd.h>

void rt_putc(char c)
{
    (void)!write(1, &c, 1);
}

void rt_exit(int code)
{
    _exit(code);
}

int main(void)
{
    rt_exit(test_main());
}
