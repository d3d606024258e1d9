#!/bin/bash
# What watching costs: bulk transfer with the tracing code compiled in (nobody
# subscribed, a state subscriber, a full subscriber) against the same code
# built with -tags tcpstate_notrace, in interleaved rounds; prints each
# round's MB/s and ratios. ROUNDS=N sets the rounds (default 7).
cd "$(dirname "$0")/.."
go test -c -o /tmp/stack.trace.test ./stack && go test -c -tags tcpstate_notrace -o /tmp/stack.notrace.test ./stack
go test -c -o /tmp/tcp.trace.test ./tcp && go test -c -tags tcpstate_notrace -o /tmp/tcp.notrace.test ./tcp
cd stack
for i in $(seq 1 ${ROUNDS:-7}); do
  n=$(/tmp/stack.notrace.test -test.run XXX -test.bench 'Bulk$' -test.benchtime 1s -test.timeout 120s | awk '/^Bench/{print $5}')
  t=$(/tmp/stack.trace.test -test.run XXX -test.bench 'Bulk$' -test.benchtime 1s -test.timeout 120s | awk '/^Bench/{print $5}')
  s=$(/tmp/stack.trace.test -test.run XXX -test.bench 'BulkSubscribedStates' -test.benchtime 1s -test.timeout 120s | awk '/^Bench/{print $5}')
  a=$(/tmp/stack.trace.test -test.run XXX -test.bench 'BulkSubscribedAll' -test.benchtime 1s -test.timeout 120s | awk '/^Bench/{print $5}')
  tn=$(cd ../tcp && /tmp/tcp.notrace.test -test.run XXX -test.bench 'Transfer$' -test.benchtime 1s -test.timeout 120s | awk '/^Bench/{print $5}')
  tt=$(cd ../tcp && /tmp/tcp.trace.test -test.run XXX -test.bench 'Transfer$' -test.benchtime 1s -test.timeout 120s | awk '/^Bench/{print $5}')
  ts=$(cd ../tcp && /tmp/tcp.trace.test -test.run XXX -test.bench 'TransferStateOnly' -test.benchtime 1s -test.timeout 120s | awk '/^Bench/{print $5}')
  echo "$n $t $s $a $tn $tt $ts"
done | awk '{printf "stack MB/s notrace %s none %s states %s all %s | ratio none/notrace %.3f states/notrace %.3f all/notrace %.3f || tcp notrace %s none %s stateonly %s ratio %.3f %.3f\n", $1,$2,$3,$4,$2/$1,$3/$1,$4/$1,$5,$6,$7,$6/$5,$7/$5}'
