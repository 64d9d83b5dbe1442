import type { Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from 'oidc-provider';

/** Models whose records belong to a grant and are deleted with it. */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
/** Models that are consumed once: kept as a hash so consume() is one HSET. */
const CONSUMABLE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/**
 * The minimal Redis adapter of the bare-provider baseline, in the shape of
 * oidc-provider's own example (example/adapters/redis.js): JSON values with the
 * model's TTL (consumable models as a hash, so consuming is one HSET), a per-grant list of
 * keys for revokeByGrantId, uid and user-code indexes, one MULTI per upsert. No hashing
 * of ids, no sealing: the ceiling, not a product.
 */
export function createBareRedisAdapter(client: Redis) {
  return class BareRedisAdapter implements Adapter {
    readonly name: string;
    constructor(name: string) {
      this.name = name;
    }

    private key(id: string) {
      return `${this.name}:${id}`;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const key = this.key(id);
      const multi = client.multi();
      if (CONSUMABLE.has(this.name)) {
        multi.hset(key, 'payload', JSON.stringify(payload));
        if (expiresIn) multi.expire(key, expiresIn);
      } else if (expiresIn) multi.set(key, JSON.stringify(payload), 'EX', expiresIn);
      else multi.set(key, JSON.stringify(payload));
      if (GRANTABLE.has(this.name) && payload.grantId) {
        const grantKey = `grant:${payload.grantId}`;
        multi.rpush(grantKey, key);
        // The list lives as long as its longest-lived member: set when new, only ever extended.
        if (expiresIn) multi.expire(grantKey, expiresIn, 'NX').expire(grantKey, expiresIn, 'GT');
      }
      if (payload.uid) multi.set(`uid:${payload.uid}`, id, 'EX', expiresIn);
      if (payload.userCode) multi.set(`userCode:${payload.userCode}`, id, 'EX', expiresIn);
      await multi.exec();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (CONSUMABLE.has(this.name)) {
        const { payload, consumed } = await client.hgetall(this.key(id));
        if (!payload) return undefined;
        return { ...(JSON.parse(payload) as AdapterPayload), ...(consumed ? { consumed: Number(consumed) } : {}) };
      }
      const raw = await client.get(this.key(id));
      return raw ? (JSON.parse(raw) as AdapterPayload) : undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(`uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const id = await client.get(`userCode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    async consume(id: string): Promise<void> {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }

    async destroy(id: string): Promise<void> {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const grantKey = `grant:${grantId}`;
      const keys = await client.lrange(grantKey, 0, -1);
      await client.del(...keys, grantKey);
    }
  };
}
