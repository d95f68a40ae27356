/* Leaks on purpose, one block definitely and one indirectly: `make test-c-valgrind` runs it first
 * and requires valgrind to fail it, so that a change to the valgrind options that stops leaks from
 * failing the run cannot pass unnoticed. */
#include <stdio.h>
#include <stdlib.h>

struct node { struct node *next; char payload[56]; };

int main(void) {
    struct node *head = malloc(sizeof *head);
    if (head == NULL) return 1;
    head->next = malloc(sizeof *head->next);
    if (head->next == NULL) return 1;
    head->next->next = NULL;
    printf("leak canary: %p\n", (void *)head);
    head = NULL; /* the only pointer to both blocks is gone */
    return 0;
}
