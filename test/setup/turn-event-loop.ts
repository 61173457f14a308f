/**
 * Before and after every test, one turn of the event loop (test/helpers/event-loop.ts says why):
 * vitest runs a file's tests one after the other through promises alone, so a file of
 * synchronous tests holds the loop from its first test to its last.
 */
import { afterEach, beforeEach } from 'vitest';
import { turnEventLoop } from '../helpers/event-loop.js';

beforeEach(turnEventLoop);
afterEach(turnEventLoop);
