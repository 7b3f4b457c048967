/*
 * Unit tests of we_queue: order, batches, putting a batch back at the
 * front, the bound (refused and counted), a closed queue, and the
 * consumer's wait ending on push and on stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "we_queue.h"

#include <pthread.h>
#include <string.h>

typedef struct item {
    we_qnode node;
    int v;
} item;

static int values(we_qnode *list, int *out, int cap)
{
    int n = 0;
    for (; list && n < cap; list = list->next)
        out[n++] = ((item *)list)->v;
    return n;
}

static void order_batches_unshift(void **state)
{
    we_queue q = WE_QUEUE_INIT(10);
    item it[5];
    assert_int_equal(we_queue_push(&q, &it[0].node), 0); /* closed until opened */
    we_queue_open(&q);
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        assert_int_equal(we_queue_push(&q, &it[i].node), 1);
    }
    int v[8];
    we_qnode *b = we_queue_take(&q, 2);
    assert_int_equal(values(b, v, 8), 2);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 1);
    we_queue_unshift(&q, b); /* back in front, in order */
    b = we_queue_take(&q, 0);
    assert_int_equal(values(b, v, 8), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(v[i], i);
    assert_null(we_queue_take(&q, 0));
    we_queue_unshift(&q, NULL);
    assert_null(we_queue_take(&q, 3));
}

static void bound_and_close(void **state)
{
    we_queue q = WE_QUEUE_INIT(2);
    item it[4];
    we_queue_open(&q);
    assert_int_equal(we_queue_push(&q, &it[0].node), 1);
    assert_int_equal(we_queue_push(&q, &it[1].node), 1);
    assert_int_equal(we_queue_push(&q, &it[2].node), -1);
    assert_int_equal(we_queue_push(&q, &it[3].node), -1);
    assert_int_equal(we_queue_take_dropped(&q), 2);
    assert_int_equal(we_queue_take_dropped(&q), 0);
    assert_non_null(we_queue_take(&q, 1));
    assert_int_equal(we_queue_push(&q, &it[2].node), 1); /* room again */
    we_queue_close(&q);
    assert_int_equal(we_queue_push(&q, &it[3].node), 0);
    assert_int_equal(we_queue_take_dropped(&q), 0); /* closed is not a drop */
    int v[4];
    assert_int_equal(values(we_queue_take(&q, 0), v, 4), 2); /* queued items stay */
}

static void *producer(void *arg)
{
    static item it = { { NULL }, 7 };
    we_queue_push(arg, &it.node);
    return NULL;
}

static void wait_and_stop(void **state)
{
    we_queue q = WE_QUEUE_INIT(4);
    we_queue_open(&q);
    assert_false(we_queue_wait(&q, 20, false)); /* times out, not stopping */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &q), 0);
    pthread_join(t, NULL);
    assert_false(we_queue_wait(&q, 5000, false)); /* returns at once: an item waits */
    we_qnode *n = we_queue_take(&q, 0);
    assert_non_null(n);
    assert_int_equal(((item *)n)->v, 7);
    we_queue_stop(&q);
    assert_true(we_queue_wait(&q, 5000, true));
    we_queue_open(&q); /* opening again clears the stop */
    assert_false(we_queue_wait(&q, 1, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_batches_unshift),
        cmocka_unit_test(bound_and_close),
        cmocka_unit_test(wait_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
