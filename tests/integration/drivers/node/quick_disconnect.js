// node-postgres' own "quick disconnect" case (its test for issue #320):
// connect() and end() at once, so that the Terminate is queued ahead of the
// startup packet. Prints what the client saw; PostgreSQL sends nothing, so
// a pooler must not either. Usage: node quick_disconnect.js PORT USER PASSWORD DB
const { Client } = require('pg')
const [port, user, password, database] = process.argv.slice(2)
const seen = []
const client = new Client({ host: '127.0.0.1', port: Number(port), user, password, database })
client.on('error', (e) => seen.push('error event: ' + e.message))
client.connect().then(
  () => seen.push('connected'),
  (e) => seen.push('connect failed: ' + e.message)
)
client.end().then(
  () => {
    // a late message would arrive as an error event: give it time
    setTimeout(() => console.log(seen.length ? seen.join('; ') : 'quiet'), 300)
  },
  (e) => console.log('end failed: ' + e.message)
)
