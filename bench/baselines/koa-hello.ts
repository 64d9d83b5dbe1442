// Baseline process: bare Koa (the version our server runs) answering "hello" on every
// request. The ceiling of any Koa route on this machine. Env: PORT.
import http from 'node:http';
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  ctx.body = 'hello';
});
const server = http.createServer(app.callback());
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
  process.exit(0);
});
