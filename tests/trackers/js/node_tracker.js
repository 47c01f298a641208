// Sends a page view, a structured event and a self-describing event with an entity through
// the real @snowplow/node-tracker, then prints one JSON line: the event ids it tracked and the
// outcome of each request it sent. Run by tests/trackers/test_node_tracker.py, which puts the
// pinned package on NODE_PATH.
//
//   node node_tracker.js <collector origin> <get|post> <network user id>
'use strict';

const {
  newTracker,
  buildPageView,
  buildStructEvent,
  buildSelfDescribingEvent,
} = require('@snowplow/node-tracker');

const CHECKOUT_SCHEMA = 'iglu:com.acme/checkout/jsonschema/1-0-0';
const BASKET_SCHEMA = 'iglu:com.acme/basket/jsonschema/1-0-0';

const ANSWER_TIMEOUT_MS = 20000;

async function main([origin, method, networkUserId]) {
  const collector = new URL(origin);
  // GET sends each event on its own; POST sends the three as one batch.
  const expectedRequests = method === 'get' ? 3 : 1;
  const requests = [];
  let allAnswered;
  const answered = new Promise((resolve) => (allAnswered = resolve));
  const record = (outcome) => {
    requests.push(outcome);
    if (requests.length === expectedRequests) allAnswered();
  };
  const tracker = newTracker(
    { namespace: 'qa-node', appId: 'shop-node' },
    {
      endpoint: collector.hostname,
      port: Number(collector.port),
      protocol: 'http',
      eventMethod: method,
      bufferSize: method === 'get' ? 1 : 3,
      retryFailedRequests: false,
      onRequestSuccess: (batch, response) => record({ status: response.status, events: batch.length }),
      onRequestFailure: (failure, response) =>
        record({ status: response ? response.status : null, events: failure.events.length }),
    },
  );
  tracker.setNetworkUserId(networkUserId);

  const basket = { schema: BASKET_SCHEMA, data: { items: 2, currency: 'EUR' } };
  const tracked = [
    tracker.track(buildPageView({ pageUrl: 'https://shop.test/basket', pageTitle: 'Basket' })),
    tracker.track(buildStructEvent({ category: 'checkout', action: 'pay', value: 42.5 })),
    tracker.track(
      buildSelfDescribingEvent({ event: { schema: CHECKOUT_SCHEMA, data: { step: 3 } } }),
      [basket],
    ),
  ];
  // flush() may resolve while a batch that filled the buffer is still on its way, so wait for
  // the answer to every request the tracker was expected to send.
  await tracker.flush();
  const timeout = setTimeout(() => {
    console.error(`only ${requests.length} of ${expectedRequests} requests were answered`);
    process.exit(1);
  }, ANSWER_TIMEOUT_MS);
  await answered;
  clearTimeout(timeout);

  const eventIds = tracked.map((payload) => payload.eid);
  process.stdout.write(JSON.stringify({ eventIds, requests }) + '\n');
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});
