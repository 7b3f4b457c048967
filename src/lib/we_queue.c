/*
 * we_queue: see we_queue.h. One mutex guards everything; the condition
 * variable is signalled on push and on stop. Waits use CLOCK_REALTIME, the
 * condition variable's default clock.
 */
#include "we_queue.h"

#include <time.h>

void we_queue_open(we_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->open = true;
    q->stop = false;
    pthread_mutex_unlock(&q->mu);
}

void we_queue_close(we_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->open = false;
    pthread_mutex_unlock(&q->mu);
}

void we_queue_stop(we_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int we_queue_push(we_queue *q, we_qnode *n)
{
    int rc;
    n->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (!q->open) {
        rc = 0;
    } else if (q->len >= q->max) {
        q->dropped++;
        rc = -1;
    } else {
        if (q->tail)
            q->tail->next = n;
        else
            q->head = n;
        q->tail = n;
        q->len++;
        pthread_cond_signal(&q->cv);
        rc = 1;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

we_qnode *we_queue_take(we_queue *q, int max_n)
{
    pthread_mutex_lock(&q->mu);
    we_qnode *list = q->head, *last = NULL, *it = q->head;
    int n = 0;
    for (; it && (max_n <= 0 || n < max_n); it = it->next, n++)
        last = it;
    if (last) {
        q->head = last->next;
        last->next = NULL;
        if (!q->head)
            q->tail = NULL;
        q->len -= n;
    }
    pthread_mutex_unlock(&q->mu);
    return list;
}

void we_queue_unshift(we_queue *q, we_qnode *list)
{
    if (!list)
        return;
    we_qnode *tail = list;
    int n = 1;
    for (; tail->next; tail = tail->next)
        n++;
    pthread_mutex_lock(&q->mu);
    tail->next = q->head;
    q->head = list;
    if (!q->tail)
        q->tail = tail;
    q->len += n;
    pthread_mutex_unlock(&q->mu);
}

bool we_queue_wait(we_queue *q, int ms, bool any_wake)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&q->mu);
    if ((any_wake || !q->head) && !q->stop)
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    bool stop = q->stop;
    pthread_mutex_unlock(&q->mu);
    return stop;
}

unsigned long we_queue_take_dropped(we_queue *q)
{
    pthread_mutex_lock(&q->mu);
    unsigned long d = q->dropped;
    q->dropped = 0;
    pthread_mutex_unlock(&q->mu);
    return d;
}
