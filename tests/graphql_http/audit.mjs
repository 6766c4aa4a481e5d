// Runs graphql-http's GraphQL-over-HTTP server audits against a running server
// and prints one JSON line per audit: {id, name, status, reason?, httpStatus?, body?}.
// Usage: node audit.mjs <graphql URL> <bearer credential>
import { serverAudits } from 'graphql-http';

const [url, credential] = process.argv.slice(2);
if (!url || !credential) {
  console.error('usage: node audit.mjs <graphql URL> <bearer credential>');
  process.exit(2);
}

// Every request of the service needs a credential: the audits' requests get it.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', `Bearer ${credential}`);
  return fetch(input, { ...init, headers });
};

for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    line.reason = result.reason;
    line.httpStatus = result.response.status;
    line.contentType = result.response.headers.get('content-type');
    line.body = (await result.response.text()).slice(0, 300);
  }
  console.log(JSON.stringify(line));
}
