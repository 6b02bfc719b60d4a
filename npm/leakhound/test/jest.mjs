// import 'leakhound/jest' (Jest's ESM mode): the same as the CommonJS entry.
import cjs from './jest.js';

export const { matchers } = cjs;
