import { describe, expect, it, vi } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/logger.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { changedFields, createRuntimeSettings, InvalidPolicyError, runtimePolicyPatchSchema } from '../../src/domain/runtime-settings.ts';

function setup(env: Record<string, unknown> = {}) {
  const clock = createManualClock(Date.now());
  const store = createMemoryStore(clock);
  const config = parseConfig({ logLevel: 'silent', ...env });
  const logger = createLogger('silent');
  const make = () => createRuntimeSettings({ store, clock, logger, config, refreshMs: 3000 });
  return { clock, store, config, make };
}

describe('runtime settings', () => {
  it('starts from the file config', async () => {
    const { make } = setup({ accessTokenTtl: 600, corsOrigins: 'https://app.example.com', lockoutMaxFailures: 7 });
    const settings = make();
    await settings.refresh();
    const policy = settings.current();
    expect(policy.tokens.accessTokenTtl).toBe(600);
    expect(policy.corsOrigins).toEqual(['https://app.example.com']);
    expect(policy.lockout.maxFailures).toBe(7);
    expect(policy.apiKeys).toEqual({ maxLifetimeDays: 90, rotationGraceSeconds: 86400, allowQueryParam: true });
  });

  it('stored overrides win; null brings the file default back', async () => {
    const { make } = setup();
    const settings = make();
    await settings.update({ tokens: { accessTokenTtl: 300 }, corsOrigins: ['https://a.example'] }, 'usr_admin');
    expect(settings.current().tokens.accessTokenTtl).toBe(300);
    expect(settings.current().tokens.refreshTokenTtl).toBe(7 * 24 * 3600);
    expect(settings.snapshot().overrides).toEqual({ tokens: { accessTokenTtl: 300 }, corsOrigins: ['https://a.example'] });
    await settings.update({ tokens: { accessTokenTtl: null }, corsOrigins: null }, 'usr_admin');
    expect(settings.current().tokens.accessTokenTtl).toBe(900);
    expect(settings.current().corsOrigins).toEqual([]);
    expect(settings.snapshot().overrides).toEqual({});
    expect(settings.snapshot().version).toBe(2);
    expect(settings.snapshot().updatedBy).toBe('usr_admin');
  });

  it('a change made by one instance reaches another as it is announced', async () => {
    const { make } = setup();
    const a = make();
    const b = make();
    await Promise.all([a.refresh(), b.refresh()]);
    await a.update({ lockout: { maxFailures: 3 } }, 'usr_x');
    await vi.waitFor(() => expect(b.current().lockout.maxFailures).toBe(3));
  });

  it('without the announcement (lost), a change reaches another instance after the refresh interval', async () => {
    const { store, clock, config } = setup();
    const silent = { ...store, publish: async () => {} };
    const make = () => createRuntimeSettings({ store: silent, clock, logger: createLogger('silent'), config, refreshMs: 3000 });
    const a = make();
    const b = make();
    await Promise.all([a.refresh(), b.refresh()]);
    await a.update({ lockout: { maxFailures: 3 } }, 'usr_x');
    expect(b.current().lockout.maxFailures).toBe(5);
    clock.advance(3000);
    b.current(); // starts the background reload
    await b.refresh();
    expect(b.current().lockout.maxFailures).toBe(3);
  });

  it('while the store is out of reach, reloads are tried once per interval, not once per request, and the failure is logged once', async () => {
    const { store, clock, config } = setup();
    const state = { down: false, reads: 0 };
    const flaky = { ...store, get: async (key: string) => {
      state.reads += 1;
      if (state.down) throw new Error('store down');
      return store.get(key);
    } };
    const warn = vi.fn();
    const info = vi.fn();
    const logger = { ...createLogger('silent'), warn, info } as unknown as ReturnType<typeof createLogger>;
    const settings = createRuntimeSettings({ store: flaky, clock, logger, config, refreshMs: 3000 });
    await settings.refresh();
    state.down = true;
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    for (let round = 0; round < 3; round++) {
      clock.advance(3000);
      const before = state.reads;
      for (let i = 0; i < 50; i++) settings.current();
      await settle();
      for (let i = 0; i < 50; i++) settings.current();
      await settle();
      expect(state.reads - before, `round ${round}`).toBe(1);
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(settings.current().lockout.maxFailures).toBe(5);
    state.down = false;
    clock.advance(3000);
    settings.current();
    await settle();
    expect(info).toHaveBeenCalledWith('runtime settings reload works again');
  });

  it('refuses inconsistent or malformed changes and keeps the old policy', async () => {
    const { make } = setup();
    const settings = make();
    await expect(settings.update({ tokens: { refreshTokenTtl: 60 } }, 'x')).rejects.toBeInstanceOf(InvalidPolicyError);
    expect(settings.current().tokens.refreshTokenTtl).toBe(7 * 24 * 3600);
    for (const bad of [
      { tokens: { accessTokenTtl: -1 } },
      { tokens: { accessTokenTtl: 'x' } },
      { tokens: { unknown: 1 } },
      { corsOrigins: ['https://a.example/path'] },
      { corsOrigins: ['*'] },
      { apiKeys: { maxLifetimeDays: 0 } },
      { nonsense: true },
    ]) {
      expect(runtimePolicyPatchSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('names the changed fields', () => {
    const { config } = setup();
    const { make } = setup();
    const before = make().defaults();
    const after = { ...before, tokens: { ...before.tokens, idTokenTtl: 60 }, corsOrigins: ['https://b.example'] };
    expect(changedFields(before, after)).toEqual(['tokens.idTokenTtl', 'corsOrigins']);
    expect(config.settingsRefreshSeconds).toBe(3);
  });
});
