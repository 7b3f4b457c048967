/*
 * A bounded FIFO of intrusive nodes between producer threads and one
 * consumer thread: push never waits (a full or closed queue refuses), the
 * consumer takes batches, puts a batch back at the front when it could not
 * finish it, and sleeps until work arrives or it is told to stop.
 *
 * An item embeds a we_qnode as its FIRST member, so a we_qnode pointer
 * converts back to the item (C11 6.7.2.1p15).
 */
#ifndef WE_QUEUE_H
#define WE_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

typedef struct we_qnode {
    struct we_qnode *next;
} we_qnode;

typedef struct we_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    we_qnode *head, *tail;
    int len, max;
    bool open;             /* pushes are accepted */
    bool stop;             /* the consumer should end */
    unsigned long dropped; /* pushes refused because the queue was full */
} we_queue;

/* A closed, empty queue of at most max items, for static storage. */
#define WE_QUEUE_INIT(max_items)                                                                  \
    { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, (max_items), false,      \
      false, 0 }

/* Accepts pushes and clears the stop request. */
void we_queue_open(we_queue *q);
/* Refuses further pushes (the items queued stay). */
void we_queue_close(we_queue *q);
/* Wakes the consumer and makes we_queue_wait return true from now on. */
void we_queue_stop(we_queue *q);

/* Appends n. Returns 1 when queued, 0 when the queue is closed, -1 when it
 * is full (counted in dropped). The caller still owns n unless 1. */
int we_queue_push(we_queue *q, we_qnode *n);
/* Takes up to max_n items (max_n <= 0: all) in order, as a NULL-terminated
 * list, or NULL. */
we_qnode *we_queue_take(we_queue *q, int max_n);
/* Puts list (in order) back at the front. */
void we_queue_unshift(we_queue *q, we_qnode *list);
/* Waits up to ms while the queue is empty (any_wake: for any signal, even
 * with items queued). True when the consumer should stop. */
bool we_queue_wait(we_queue *q, int ms, bool any_wake);
/* The number of refused pushes since the last call. */
unsigned long we_queue_take_dropped(we_queue *q);

#endif
