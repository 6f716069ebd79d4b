import { Global, Module } from '@nestjs/common';
import { ParsePool } from './parse-pool';

/** The worker threads that read uploads and build export files (one pool per process), for every module that imports or exports. */
@Global()
@Module({ providers: [ParsePool], exports: [ParsePool] })
export class TabularModule {}
