// node-postgres in transaction mode: statement_timeout and options in the
// client config, SET, and LISTEN/NOTIFY ('notification' events) hold for
// client A across transactions while client B runs in between; B sees
// none of A's. argv: port user password
const { Client } = require('pg');
const [port, user, password] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
let fails = 0;
function expect(name, want, got) {
  const good = JSON.stringify(want) === JSON.stringify(got);
  if (!good) fails++;
  console.log(good ? `ok - node-postgres: ${name}` : `not ok - node-postgres: ${name}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
}
const base = { host: '127.0.0.1', port, user, password, database: 'pgcrab_shard_1', connectionTimeoutMillis: 10000, query_timeout: 10000 };
const one = async (c, sql) => Object.values((await c.query(sql)).rows[0])[0];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const a = new Client({ ...base, statement_timeout: 6000, options: '-c work_mem=5MB' });
  const b = new Client(base);
  await a.connect();
  await b.connect();
  try {
    for (let r = 0; r < 2; r++) {
      expect(`round ${r}: A's statement_timeout and options config`, ['6s', '5MB'],
        [await one(a, 'SHOW statement_timeout'), await one(a, 'SHOW work_mem')]);
      expect(`round ${r}: B has the defaults`, ['0', '4MB'],
        [await one(b, 'SHOW statement_timeout'), await one(b, 'SHOW work_mem')]);
    }
    await a.query("SET work_mem = '9MB'");
    expect("B after A's SET work_mem", '4MB', await one(b, 'SHOW work_mem'));
    expect("A's SET in its next transaction", '9MB', await one(a, 'SHOW work_mem'));

    const got = [];
    a.on('notification', (m) => got.push([m.channel, m.payload]));
    await a.query('LISTEN crab_drv');
    await b.query("NOTIFY crab_drv, 'one'");
    await one(a, 'SELECT 1');
    await a.query('BEGIN');
    await one(a, 'SELECT 2');
    await a.query('COMMIT');
    await b.query("NOTIFY crab_drv, 'two'");
    for (let i = 0; i < 50 && got.length < 2; i++) await sleep(100); // idle A: the event comes by itself
    expect('LISTEN: A gets B\'s notifications across transactions, idle or not', [['crab_drv', 'one'], ['crab_drv', 'two']], got);
    expect('B does not listen', '0', String(await one(b, 'SELECT count(*) FROM pg_listening_channels()')));
    await a.query('UNLISTEN *');
  } finally {
    await a.end();
    await b.end();
  }
}

main()
  .catch((e) => { fails++; console.log(`not ok - node-postgres: the script ran to its end: ${e.code || ''} ${e.message}`); })
  .then(() => { console.log('# done'); process.exit(fails ? 1 : 0); });
