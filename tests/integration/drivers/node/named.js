// node-postgres: named statements and parameterised queries from 20
// concurrent clients through PgCrab. argv: port
const { Client } = require('pg');
const port = Number(process.argv[2]);

async function one(i) {
  const c = new Client({ host: '127.0.0.1', port, user: 'pgcrab', password: 'pgcrab', database: 'pgcrab_shard_1' });
  await c.connect();
  let bad = 0;
  try {
    for (let k = 0; k < 50; k++) {
      const n = i * 1000 + k;
      const r = await c.query({ name: 'double', text: 'SELECT $1::int * 2 AS v', values: [n] });
      if (r.rows[0].v !== 2 * n) bad++;
      const s = await c.query({ name: 'concat', text: "SELECT $1::text || '-' || $2::text AS s", values: ['a' + i, k] });
      if (s.rows[0].s !== `a${i}-${k}`) bad++;
      const p = await c.query('SELECT count(*)::int AS n FROM generate_series(1, $1::int)', [k + 1]);
      if (p.rows[0].n !== k + 1) bad++;
    }
  } finally {
    await c.end();
  }
  return bad;
}

Promise.all(Array.from({ length: 20 }, (_, i) => one(i)))
  .then((bads) => {
    const bad = bads.reduce((a, b) => a + b, 0);
    console.log(`${bad === 0 ? 'ok' : 'not ok'} - node-postgres: 20 clients x 50 rounds, ${bad} wrong results`);
    process.exit(bad === 0 ? 0 : 1);
  })
  .catch((e) => {
    console.log(`not ok - node-postgres: ${e.code || ''} ${e.message}`);
    process.exit(1);
  });
