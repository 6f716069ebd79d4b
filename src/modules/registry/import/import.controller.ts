import {
  CallHandler,
  Controller,
  ExecutionContext,
  Get,
  HttpCode,
  Inject,
  Injectable,
  NestInterceptor,
  Post,
  Query,
  Req,
  Res,
  StreamableFile,
  Type,
  UseInterceptors,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional } from 'class-validator';
import type { Request, Response } from 'express';
import multer from 'multer';
import { Observable } from 'rxjs';
import { APP_CONFIG, AppConfig } from '../../../config/config';
import { ErrorCode, Errors } from '../../../infra/http/errors';
import { CurrentUser, Roles } from '../../../infra/access/decorators';
import type { AuthUser } from '../../../infra/access/roles';
import type { ResourceDef, ResourceService } from '../resource';
import { serviceToken } from '../resource.controller';
import type { ImportKind } from './columns';
import { FileOut, ImportService } from './import.service';
import type { FileFormat } from '../../../infra/tabular/tabular';

const FORMATS = ['csv', 'xlsx'] as const;

export class FormatQuery {
  @ApiPropertyOptional({ enum: FORMATS, default: 'csv' }) @IsOptional() @IsIn(FORMATS) format?: FileFormat;
}

export class ImportQuery {
  @ApiPropertyOptional({ description: 'validate only; write nothing' })
  @IsOptional()
  @Transform(({ value }) => (value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : value))
  @IsBoolean()
  dryRun?: boolean;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(bytes % (1024 * 1024) === 0 ? 0 : 2)} MB`;

/**
 * Reads the multipart upload (field `file`) into memory, refusing it past import.maxFileBytes
 * with a 413 naming the limit. Runs after the auth guard, so anonymous uploads are never read.
 */
@Injectable()
export class UploadInterceptor implements NestInterceptor {
  private readonly limit: number;
  private readonly upload: ReturnType<ReturnType<typeof multer>['single']>;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.limit = config.import.maxFileBytes;
    this.upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: this.limit, files: 1, fields: 10, parts: 20 } }).single('file');
  }

  async intercept(ctx: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const req = ctx.switchToHttp().getRequest<Request>();
    const res = ctx.switchToHttp().getResponse<Response>();
    if (!req.is('multipart/form-data')) throw Errors.badRequest(ErrorCode.IMPORT.NOT_MULTIPART, '请以 multipart/form-data 上传文件，字段名为 file');
    await new Promise<void>((resolve, reject) =>
      this.upload(req, res, (err?: unknown) => {
        if (!err) return resolve();
        const code = (err as { code?: string }).code;
        if (code === 'LIMIT_FILE_SIZE') reject(Errors.payloadTooLarge(`文件超过 ${mb(this.limit)}（${this.limit} 字节）的上限，请拆分后分别导入`));
        else if (code === 'LIMIT_UNEXPECTED_FILE' || code === 'LIMIT_FILE_COUNT')
          reject(Errors.badRequest(ErrorCode.IMPORT.BAD_UPLOAD, '只能上传一个文件，字段名为 file'));
        else reject(Errors.badRequest(ErrorCode.IMPORT.BAD_UPLOAD, `上传内容无法解析：${(err as Error).message}`));
      }),
    );
    if (!req.file) throw Errors.badRequest(ErrorCode.IMPORT.NO_FILE, '缺少文件：请在字段 file 中上传 CSV 或 XLSX 文件');
    return next.handle();
  }
}

function send(res: Response, out: FileOut): StreamableFile {
  const ascii = out.filename.replace(/[^\x20-\x7e]/g, '_');
  res.setHeader('Content-Type', out.contentType);
  res.setHeader('Content-Disposition', `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(out.filename)}`);
  return new StreamableFile(out.body);
}

/**
 * Import, export and template routes of one registry list:
 * POST /import/{kind}, GET /export/{kind}, GET /import/templates/{kind}.
 * Who may import is who may write the list (school_security: guards and posts of their own
 * school; a row of another school makes the whole file a 403); export follows the list route.
 */
export function importController(def: ResourceDef, kind: ImportKind): Type<unknown> {
  class ExportQuery extends (def.queryDto as new () => object) {
    @ApiPropertyOptional({ enum: FORMATS, default: 'csv' }) @IsOptional() @IsIn(FORMATS) format?: FileFormat;
  }

  @ApiTags('import-export')
  @ApiBearerAuth()
  @Controller()
  class ImportController {
    constructor(
      @Inject(serviceToken(def)) private readonly svc: ResourceService<{ id: string }>,
      private readonly imports: ImportService,
    ) {}

    /** Imports {resource} from a CSV (UTF-8 or GB18030) or XLSX file: rows checked, errors per row and field; `dryRun=true` checks without writing. */
    @Roles(...def.writeRoles)
    @Post(`import/${kind}`)
    @HttpCode(200)
    @UseInterceptors(UploadInterceptor)
    @ApiConsumes('multipart/form-data')
    @ApiBody({
      schema: { type: 'object', required: ['file'], properties: { file: { type: 'string', format: 'binary', description: 'CSV (UTF-8 or GB18030) or XLSX' } } },
    })
    import(@Req() req: Request, @Query() query: ImportQuery, @CurrentUser() user: AuthUser) {
      return this.imports.importFile(kind, this.svc, user, req.file!.buffer, query.dryRun === true);
    }

    /** Exports {resource} (the list's filters) as CSV (UTF-8 with BOM) or XLSX. */
    @Roles(...def.readRoles)
    @Get(`export/${kind}`)
    async export(@Query() query: ExportQuery, @CurrentUser() user: AuthUser, @Res({ passthrough: true }) res: Response) {
      const { format = 'csv', ...filters } = query as ExportQuery & Record<string, unknown>;
      return send(res, await this.imports.exportFile(kind, this.svc, user, filters, format));
    }

    /** The import template of {resource} (headers and an example row), as CSV or XLSX. */
    @Roles(...def.readRoles)
    @Get(`import/templates/${kind}`)
    async template(@Query() query: FormatQuery, @Res({ passthrough: true }) res: Response) {
      return send(res, await this.imports.template(kind, query.format ?? 'csv'));
    }
  }
  const proto = ImportController.prototype;
  Reflect.defineMetadata('design:paramtypes', [Object, ImportQuery, Object], proto, 'import');
  Reflect.defineMetadata('design:paramtypes', [ExportQuery, Object, Object], proto, 'export');
  Reflect.defineMetadata('design:paramtypes', [FormatQuery, Object], proto, 'template');
  const pascal = kind.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
  Object.defineProperty(ImportController, 'name', { value: `${pascal}ImportController` });
  Object.defineProperty(ExportQuery, 'name', { value: `${pascal}ExportQuery` });
  return ImportController;
}
